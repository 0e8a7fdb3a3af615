#if canImport(Glibc)
import Glibc
#endif
import Checkpoint
import Cluster
import Config
import Foundation
import NeuralNet
import Signals

/// Writes what a run leaves in `--out DIR`: metrics.jsonl, checkpoints, report.json.
public final class RunOutput {
    public let directory: String
    private let metrics: AppendingFile
    /// Every metrics row written, kept for report.html.
    public private(set) var rows: [MetricsRow] = []

    /// Makes `directory`; with `resumeAt` (a resumed run's step), keeps the metrics rows of
    /// steps up to it and drops the later ones, which the resumed run computes again.
    public init(directory: String, resumeAt: Int? = nil, tensorboard: Bool = true) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError.io("--out \(directory): cannot create directory (\(error.localizedDescription))")
        }
        let path = directory + "/metrics.jsonl"
        var kept = ""
        if let step = resumeAt, let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            for line in existing.split(separator: "\n") {
                guard let data = line.data(using: .utf8),
                      let row = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                      let rowStep = row["step"] as? Int, rowStep <= step else { continue }
                kept += line + "\n"
            }
        }
        metrics = try AppendingFile(path: path, truncate: true)
        try metrics.append(kept)
        resumedRows = kept
        events = tensorboard ? try TensorBoardWriter(directory: directory + "/tensorboard") : nil
        if let step = resumeAt { try events?.restart(at: step + 1) }
    }

    /// TensorBoard event files under `tensorboard/` (nil with --no-tensorboard).
    public let events: TensorBoardWriter?

    /// The rows a resumed run kept from before (steps up to the checkpoint's), as written.
    private var resumedRows = ""

    /// Drops the metrics rows after step `step` (a rewind computes those steps again).
    public func rewind(toStep step: Int) throws {
        try events?.restart(at: step + 1)
        rows.removeAll { $0.step > step }
        try metrics.truncate()
        try metrics.append(resumedRows)
        for row in rows { try metrics.append(row.json.serialized(pretty: false) + "\n") }
    }

    /// Appends one metrics row (and its scalars to the TensorBoard events).
    public func record(_ row: MetricsRow) throws {
        rows.append(row)
        try metrics.append(row.json.serialized(pretty: false) + "\n")
        try events?.scalars(Self.scalars(of: row), step: row.step)
    }

    /// The TensorBoard scalars of a metrics row: `loss`, `accuracy`, `learning_rate`,
    /// `grad_norm` and `grad_norm/PARAMETER`, `samples_per_s`, `workers`, and the monitor's
    /// numeric signals as `monitor/NAME` (`monitor/NAME/KEY` for per-layer ones).
    static func scalars(of row: MetricsRow) -> [(tag: String, value: Double)] {
        var values: [(tag: String, value: Double)] = [
            ("loss", row.loss), ("accuracy", row.accuracy), ("learning_rate", row.learningRate), ("grad_norm", row.gradNorm),
            ("samples_per_s", row.samplesPerSecond), ("workers", Double(row.workers)),
        ]
        func number(_ value: JSONValue) -> Double? {
            switch value {
            case .number(let text): return Double(text)
            case .bool(let flag): return flag ? 1 : 0
            default: return nil
            }
        }
        for key in row.extra.keys.sorted() {
            let value = row.extra[key]!
            let prefix = key == "grad_norms" ? "grad_norm" : "monitor/\(key)"
            if let x = number(value) {
                values.append((prefix, x))
            } else if case .object(let members) = value {
                for (inner, member) in members.sorted(by: { $0.key < $1.key }) {
                    if let x = number(member) { values.append(("\(prefix)/\(inner)", x)) }
                }
            }
        }
        return values
    }

    /// Test loss and accuracy after an epoch (or at the end), at the step they were measured.
    public func recordEvaluation(step: Int, loss: Double, accuracy: Double) throws {
        evaluations.removeAll { $0.step >= step }
        evaluations.append(Evaluation(step: step, loss: loss, accuracy: accuracy))
        try events?.scalars([("test_loss", loss), ("test_accuracy", accuracy)], step: step)
    }

    /// A test-set evaluation (per epoch and at the end), for report.html.
    public struct Evaluation { public var step: Int, loss: Double, accuracy: Double }
    public private(set) var evaluations: [Evaluation] = []

    /// Text events: the run's config at its first step, collapse alerts at theirs.
    public func recordText(_ tag: String, _ text: String, step: Int) throws {
        try events?.text(tag, text, step: step)
    }

    /// Writes report.json (and report.html when a renderer is given).
    public func writeReport(_ report: RunReport) throws {
        let path = directory + "/report.json"
        do {
            try (report.json.serialized(pretty: true) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw RuntimeError.io("\(path): cannot write (\(error.localizedDescription))")
        }
    }

    /// Writes a text file into the output directory.
    public func writeFile(_ name: String, _ contents: String) throws {
        let path = directory + "/" + name
        do { try contents.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw RuntimeError.io("\(path): cannot write (\(error.localizedDescription))")
        }
    }
}

/// Model state ↔ safetensors: parameters and running statistics by name in checkpoint order,
/// optimizer state as `optimizer.<state>` flat tensors, run state in the metadata.
public enum CheckpointIO {
    /// The model's tensors in checkpoint order.
    public static func stateTensors(_ model: Model) -> [NamedTensor] {
        model.stateOrder.map { item in
            let store = item.isBuffer ? model.buffers : model.parameters
            let entry = store.entries[item.index]
            let pointer = store.values.pointer + entry.offset
            return NamedTensor(name: entry.name, shape: entry.shape, values: Array(UnsafeBufferPointer(start: pointer, count: entry.count)))
        }
    }

    /// SHA-256 of the model's state as little-endian Float32 in checkpoint order.
    public static func parametersHash(_ model: Model) -> String {
        var hasher = ParameterHasher()
        for item in model.stateOrder {
            let store = item.isBuffer ? model.buffers : model.parameters
            let entry = store.entries[item.index]
            hasher.update(UnsafeBufferPointer(start: store.values.pointer + entry.offset, count: entry.count))
        }
        return hasher.finalize()
    }

    /// Writes `checkpoint-STEP.safetensors` and `latest.safetensors`.
    public static func write(session: TrainingSession, directory: String, runID: UInt64, metadata extra: [String: String] = [:]) throws {
        var tensors = stateTensors(session.model)
        for (name, values) in zip(session.optimizer.rule.stateNames, session.optimizer.stateArrays) {
            tensors.append(NamedTensor(name: "optimizer.\(name)", shape: [values.count], values: values))
        }
        var metadata = extra
        metadata["step"] = String(session.globalStep)
        metadata["optimizer_step"] = String(session.optimizer.step)
        metadata["shards"] = String(session.shards)
        metadata["seed"] = String(session.config.training.seed)
        metadata["run_id"] = String(runID)
        metadata["config"] = String(decoding: session.config.jsonData(), as: UTF8.self)
        metadata["format"] = "chorus-checkpoint-1"
        metadata["config_hash"] = String(session.config.canonicalHash())
        metadata["tensors_sha256"] = tensorsSHA256(tensors)
        let path = "\(directory)/checkpoint-\(session.globalStep).safetensors"
        do {
            try SafetensorsWriter.write(tensors: tensors, metadata: metadata, to: path)
            try SafetensorsWriter.write(tensors: tensors, metadata: metadata, to: "\(directory)/latest.safetensors")
        } catch {
            throw RuntimeError.checkpoint("\(path): \(error)")
        }
    }

    /// SHA-256 of every tensor's values, in name order: a checkpoint's own checksum.
    static func tensorsSHA256(_ tensors: [NamedTensor]) -> String {
        parametersSHA256(tensors.sorted { $0.name < $1.name }.map(\.values))
    }

    /// Checks a checkpoint against the checksum in its metadata (files without one, from
    /// before checksums, pass); throws naming the file when a byte of a tensor changed.
    public static func verify(_ file: SafetensorsFile) throws {
        guard let expected = file.metadata["tensors_sha256"] else { return }
        let tensors: [NamedTensor]
        do { tensors = try file.tensors.map { try file.floatTensor(named: $0.name) } } catch {
            throw RuntimeError.checkpoint("\(file.path): \(error)")
        }
        guard tensorsSHA256(tensors) == expected else {
            throw RuntimeError.checkpoint("\(file.path): its tensors do not match the checksum in its metadata: the file is corrupt")
        }
    }

    /// Loads named parameters (and running statistics) into the model: `--init-from`.
    /// Every model tensor must be present with its shape.
    public static func loadWeights(into model: Model, from file: SafetensorsFile) throws {
        for item in model.stateOrder {
            let store = item.isBuffer ? model.buffers : model.parameters
            let entry = store.entries[item.index]
            let tensor: NamedTensor
            do { tensor = try file.floatTensor(named: entry.name) } catch {
                throw RuntimeError.checkpoint("\(file.path): \(error)")
            }
            guard tensor.shape == entry.shape else {
                throw RuntimeError.checkpoint("\(file.path): tensor \(entry.name) has shape \(tensor.shape) but the model needs \(entry.shape)")
            }
            (store.values.pointer + entry.offset).update(from: tensor.values, count: entry.count)
        }
    }

    /// Restores parameters, optimizer state and the step from a checkpoint: `--resume`.
    public static func resume(session: TrainingSession, from file: SafetensorsFile) throws {
        let path = file.path
        guard let shards = file.metadata["shards"].flatMap(Int.init), shards == session.shards else {
            throw RuntimeError.checkpoint("\(path): checkpoint was made with \(file.metadata["shards"] ?? "?") shards; resume with --shards \(file.metadata["shards"] ?? "?")")
        }
        try loadWeights(into: session.model, from: file)
        var state: [[Float]] = []
        for name in session.optimizer.rule.stateNames {
            do { state.append(try file.floatTensor(named: "optimizer.\(name)").values) } catch {
                throw RuntimeError.checkpoint("\(path): \(error)")
            }
        }
        guard let step = file.metadata["step"].flatMap(Int.init), let optimizerStep = file.metadata["optimizer_step"].flatMap(Int.init) else {
            throw RuntimeError.checkpoint("\(path): metadata lacks step/optimizer_step")
        }
        // The step picks batches (an index into the permutation): the tensor checksum does not cover it.
        guard step >= 0, optimizerStep >= 0 else {
            throw RuntimeError.checkpoint("\(path): metadata step \(step) / optimizer_step \(optimizerStep) is negative")
        }
        guard state.allSatisfy({ $0.count == session.model.parameters.count }) else {
            throw RuntimeError.checkpoint("\(path): optimizer state does not match the model's \(session.model.parameters.count) parameters")
        }
        session.optimizer.restore(state: state, step: optimizerStep)
        session.globalStep = step
    }
}

/// A one-line progress display (epoch, step/total, loss, accuracy, samples/s, ETA, workers):
/// redrawn in place on a terminal ten times a second, a plain line every 10 s otherwise (CI
/// logs); nothing with --quiet.
public final class Progress {
    let isTerminal = isatty(STDERR_FILENO) == 1
    var lastShown: UInt64 = 0
    var shownOnce = false
    public var quiet = false
    public init() {}

    /// Whether an update would be shown now (the caller formats the line only then).
    public func isDue() -> Bool {
        guard !quiet else { return false }
        let interval: UInt64 = isTerminal ? 100_000_000 : 10_000_000_000
        // The first plain line after 1 s: a short run in a log stays short.
        return shownOnce ? DispatchTime.now().uptimeNanoseconds &- lastShown >= interval
            : DispatchTime.now().uptimeNanoseconds &- started >= (isTerminal ? 0 : 1_000_000_000)
    }
    let started = DispatchTime.now().uptimeNanoseconds

    public func update(_ text: String, force: Bool = false) {
        guard !quiet, force || isDue() else { return }
        lastShown = DispatchTime.now().uptimeNanoseconds
        shownOnce = true
        FileOutput.standardError(isTerminal ? "\r\u{1B}[2K\(text)" : "\(text)\n")
    }

    /// "1h02m", "3m07s", "12s".
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let total = Int(seconds.rounded())
        if total >= 3600 { return String(format: "%dh%02dm", total / 3600, total / 60 % 60) }
        if total >= 60 { return String(format: "%dm%02ds", total / 60, total % 60) }
        return "\(total)s"
    }

    public func line(_ text: String) {
        if isTerminal { FileOutput.standardError("\r\u{1B}[2K") }
        FileOutput.standardError("\(text)\n")
    }
}
