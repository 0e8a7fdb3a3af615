#if canImport(Glibc)
import Glibc
#endif
import Cluster
import CollapseMonitor
import Config
import Foundation
import NeuralNet
import Signals
import TensorCore

/// Produces one step's shard contributions and adds them to the session in shard order:
/// in-process, or through the worker cluster.
public protocol StepExecutor: AnyObject {
    /// Workers computing shards (0 in-process).
    var workerCount: Int { get }
    /// Computes every shard of `session.globalStep` and calls `session.add` for shards
    /// 0..<S (or nodes of the shard tree covering them) in order. Throws when the step cannot complete (no workers left, say).
    func execute(session: TrainingSession) throws
    /// The coordinator's counters for report.json (nil in-process).
    var clusterReport: ClusterReport? { get }
    /// Releases workers and sockets.
    func shutdown()
    /// After `execute`: a state to go back to instead of finishing the step (a refereed audit
    /// proved a worker wrong; its results since that state are computed again without it), once.
    func takeRewind() -> Rewind?
    /// Records its spans into `timeline` from now on.
    func attach(timeline: Timeline)
}

extension StepExecutor {
    public func takeRewind() -> Rewind? { nil }
    public func attach(timeline: Timeline) {}
}

/// Where a run goes back to, and why.
public struct Rewind {
    public let state: TrainingSession.State
    public let reason: String
    /// Why that state, for the log line.
    public var basis = "the last one clean audits vouch for"
    /// Who is left out when the steps are computed again.
    public var without = " without it"
}

/// Computes every shard in this process, in shard order: `--workers 0`.
public final class InProcessExecutor: StepExecutor {
    let computer: ShardComputer
    /// Collects each shard's monitor signals when set.
    public var collector: SignalCollector?
    /// Receives (shard, signals) for every shard when a collector is set.
    public var shardSignals: ((Int, ShardSignals) -> Void)?

    public init(session: TrainingSession) {
        computer = ShardComputer(model: session.model, train: session.data.train, plan: session.plan,
                                 loss: session.config.loss, seed: session.config.training.seed)
    }

    public var workerCount: Int { 0 }

    public func execute(session: TrainingSession) throws {
        for shard in 0..<session.shards {
            let started = timeline?.now() ?? 0
            let contribution = session.contributionBuffer()
            let (outcome, signals) = computer.compute(globalStep: session.globalStep, shard: shard, shards: session.shards,
                                                      into: contribution.pointer, collector: collector)
            if let signals { shardSignals?(shard, signals) }
            session.add(shards: shard..<(shard + 1), contribution: contribution, outcome: outcome)
            if let timeline {
                timeline.span(.coordinator, "compute", from: started, to: timeline.now(), step: session.globalStep + 1, args: ["shard": .integer(shard)])
            }
        }
    }

    var timeline: Timeline?
    public func attach(timeline: Timeline) { self.timeline = timeline }

    public var clusterReport: ClusterReport? { nil }
    public func shutdown() {}
}

/// Options of a training run beyond its config.
public struct TrainOptions {
    public var outputDirectory = "out"
    public var resumeDirectory: String?
    public var initFrom: String?
    public var quiet = false
    public var runID: UInt64 = 0
    /// Attach the collapse monitor (on unless --no-monitor).
    public var monitor = true
    /// A checkpoint every K steps as well as at each epoch end (0: epoch ends only).
    public var checkpointEvery = TrainOptions.defaultCheckpointEvery
    /// Keep only the newest N `checkpoint-STEP` files (0: all).
    public var keepCheckpoints = 0
    /// `--metrics-port`: serve Prometheus metrics on this port (nil: off) at `metricsBind`.
    public var metricsPort: Int?
    public var metricsBind = "127.0.0.1"
    /// `OUT/timeline.json` keeps the first and last this many steps and every step with an event (0: no timeline).
    public var timelineSteps = 50
    /// TensorBoard event files under OUT/tensorboard (on unless --no-tensorboard).
    public var tensorboard = true
    /// `--resume-changed`: resume although the settings differ from the checkpoint's.
    public var allowChangedResume = false
    /// A few hundred steps: a coordinator that dies loses at most this much work.
    public static let defaultCheckpointEvery = 200
    public init() {}
}

/// The training loop shared by in-process and distributed runs: execute a step, finish it
/// (average, clip, update), record metrics, evaluate and checkpoint at epoch ends, write the
/// report at the end or when stopped.
public final class Trainer {
    public let session: TrainingSession
    public let executor: StepExecutor
    public let output: RunOutput
    public let options: TrainOptions
    public let progress = Progress()
    public let blasCore: String
    /// Called after each finished step with its result and metrics row (the monitor hooks in here);
    /// return false to stop the run (status "stopped").
    public var afterStep: ((StepResult, inout MetricsRow) -> Bool)?
    /// Extra report fields (the monitor's verdict), by name.
    public var reportExtras: (() -> [String: JSONValue])?
    /// Objects that live as long as the trainer (the monitor hookup).
    public var attachments: [AnyObject] = []
    /// Called after a rewind to the state before step `step` (the monitor forgets what came after).
    public var afterRewind: ((Int) -> Void)?
    /// The monitor's verdict and how many alerts it raised (for --metrics-port); set by the monitor.
    public var collapseState: (() -> (verdict: CollapseVerdict, alerts: Int))?
    /// Extra HTML renderer (report.html).
    public var renderHTML: ((HTMLReportInput) -> String)?

    public init(session: TrainingSession, executor: StepExecutor, options: TrainOptions, blasCore: String) throws {
        self.session = session
        self.executor = executor
        self.options = options
        self.blasCore = blasCore
        output = try RunOutput(directory: options.outputDirectory, resumeAt: options.resumeDirectory != nil ? session.globalStep : nil,
                               tensorboard: options.tensorboard)
        progress.quiet = options.quiet
        if options.timelineSteps > 0 {
            let timeline = Timeline(keepSteps: options.timelineSteps)
            self.timeline = timeline
            executor.attach(timeline: timeline)
        }
    }

    /// Spans of the run for OUT/timeline.json (nil with --timeline-steps 0).
    public private(set) var timeline: Timeline?

    /// `body`, as a coordinator span named `name` at `step` when there is a timeline.
    func timed<T>(_ name: String, step: Int, _ body: () throws -> T) rethrows -> T {
        guard let timeline else { return try body() }
        let started = timeline.now()
        defer { timeline.span(.coordinator, name, from: started, to: timeline.now(), step: step) }
        return try body()
    }

    /// Runs to the end; returns the report written.
    @discardableResult
    public func run() throws -> RunReport {
        let config = session.config
        let epochs = config.training.epochs
        var status = "completed"
        var failure: String?
        var trainingSeconds = 0.0, trainedExamples = 0
        var trainingCPUNanos: UInt64 = 0, trainedSteps = 0
        var lastLoss = Double.nan, testAccuracy: Double?, testLoss: Double?
        var windowAccuracy = 0.0
        let firstStep = session.globalStep
        if config.training.batchSize > session.data.train.count {
            progress.line("chorus: warning: --batch-size \(config.training.batchSize) is larger than the \(session.data.train.count) training examples; every step uses all of them")
        }
        progress.line("chorus: \(session.model.parameters.count) parameters, \(session.data.train.count) training examples, \(session.totalSteps) steps, \(session.shards) shard(s), \(executor.workerCount) worker(s), OpenBLAS kernel \(blasCore)")
        var metrics: MetricsEndpoint?
        var lastClusterMetrics: UInt64 = 0
        defer { metrics?.stop() }
        do {
            if let port = options.metricsPort {
                metrics = try MetricsEndpoint(host: options.metricsBind, port: port)
                progress.line("chorus: Prometheus metrics at http://\(options.metricsBind):\(metrics!.port)/metrics")
            }
            let configText = String(decoding: config.jsonData(pretty: true), as: UTF8.self)
            try output.recordText("config", "```\n\(configText)\n```", step: session.globalStep)
            while session.globalStep < session.totalSteps {
                if interruptSignal != 0 { failure = "interrupted by signal \(interruptSignal)"; status = "failed"; break }
                let started = DispatchTime.now().uptimeNanoseconds
                let cpuStarted = processCPUNanos()
                session.beginStep()
                try executor.execute(session: session)
                if let rewind = executor.takeRewind() {
                    try self.rewind(to: rewind)
                    continue
                }
                let result = timed("update", step: session.globalStep + 1) { session.finishStep() }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                trainingSeconds += seconds
                trainingCPUNanos += processCPUNanos() &- cpuStarted
                trainedSteps += 1
                trainedExamples += result.examples
                lastLoss = result.loss
                windowAccuracy = windowAccuracy == 0 ? result.accuracy : 0.95 * windowAccuracy + 0.05 * result.accuracy
                var row = MetricsRow(step: result.globalStep + 1, epoch: result.epoch + 1, loss: result.loss, accuracy: result.accuracy,
                                     gradNorm: result.gradNorm, clipped: result.clipped, learningRate: Double(result.learningRate),
                                     samplesPerSecond: Double(result.examples) / max(seconds, 1e-9), workers: executor.workerCount)
                let keepGoing = afterStep?(result, &row) ?? true
                try output.record(row)
                if let metrics {
                    let state = collapseState?()
                    // The cluster's counters four times a second at most (the report is assembled).
                    let now = DispatchTime.now().uptimeNanoseconds
                    let cluster = now &- lastClusterMetrics >= 250_000_000 || session.globalStep == session.totalSteps ? executor.clusterReport : nil
                    if cluster != nil { lastClusterMetrics = now }
                    metrics.update(row: row, stepSeconds: seconds, cluster: cluster, workers: executor.workerCount,
                                   collapse: state?.verdict, alerts: state?.alerts ?? 0)
                }
                if progress.isDue() {
                    let rate = Double(trainedExamples) / max(trainingSeconds, 1e-9)
                    let stepsPerSecond = Double(session.globalStep - firstStep) / max(trainingSeconds, 1e-9)
                    let left = Double(session.totalSteps - session.globalStep) / max(stepsPerSecond, 1e-9)
                    let workers = executor.workerCount == 0 ? "in-process" : "\(executor.workerCount) worker\(executor.workerCount == 1 ? "" : "s")"
                    progress.update(String(format: "epoch %d/%d step %d/%d loss %.4f acc %.3f %.1fk samples/s",
                                           result.epoch + 1, epochs, session.globalStep, session.totalSteps, result.loss,
                                           windowAccuracy, rate / 1000) + " ETA \(Progress.duration(left)) \(workers)")
                }
                if !keepGoing { status = "stopped"; break }
                let endOfEpoch = session.plan.position(globalStep: session.globalStep).epoch != result.epoch
                if !endOfEpoch, session.globalStep != session.totalSteps, options.checkpointEvery > 0,
                   session.globalStep % options.checkpointEvery == 0 {
                    try timed("checkpoint", step: session.globalStep) { try writeCheckpoint() }
                }
                if endOfEpoch || session.globalStep == session.totalSteps {
                    let evaluation = timed("evaluate", step: session.globalStep) { session.evaluate() }
                    testLoss = evaluation.loss; testAccuracy = evaluation.accuracy
                    try output.recordEvaluation(step: session.globalStep, loss: evaluation.loss, accuracy: evaluation.accuracy)
                    metrics?.evaluated(loss: evaluation.loss, accuracy: evaluation.accuracy)
                    progress.line(String(format: "epoch %d: train loss %.4f, test loss %.4f, test accuracy %.4f, %.1fk samples/s",
                                         result.epoch + 1, result.loss, evaluation.loss, evaluation.accuracy,
                                         Double(trainedExamples) / max(trainingSeconds, 1e-9) / 1000))
                    try timed("checkpoint", step: session.globalStep) { try writeCheckpoint() }
                }
                timeline?.endStep(session.globalStep)
            }
        } catch {
            status = "failed"
            failure = "\(error)"
        }
        executor.shutdown()
        if testAccuracy == nil && session.globalStep > 0 {
            let evaluation = session.evaluate()
            testLoss = evaluation.loss; testAccuracy = evaluation.accuracy
            try? output.recordEvaluation(step: session.globalStep, loss: evaluation.loss, accuracy: evaluation.accuracy)
        }
        if status != "completed", session.globalStep > 0 {
            try? CheckpointIO.write(session: session, directory: output.directory, runID: options.runID)
        }
        var report = RunReport()
        report.status = status
        report.error = failure
        report.steps = session.globalStep
        report.epochs = session.globalStep == 0 ? 0 : session.plan.position(globalStep: session.globalStep - 1).epoch + 1
        report.workers = executor.workerCount
        report.shards = session.shards
        report.finalLoss = lastLoss
        report.testAccuracy = testAccuracy
        report.testLoss = testLoss
        report.samplesPerSecond = trainedExamples == 0 ? 0.0 : Double(trainedExamples) / max(trainingSeconds, 1e-9)
        report.cpuMsPerStep = trainedSteps == 0 ? 0 : (Double(trainingCPUNanos) / 1e6 / Double(trainedSteps) * 1000).rounded() / 1000
        report.paramsSHA256 = CheckpointIO.parametersHash(session.model)
        report.parameters = session.model.parameters.count
        report.blasCore = blasCore
        report.runID = options.runID
        report.updateMsPerStep = session.globalStep == 0 ? 0 : (Double(session.updateNanos) / 1e6 / Double(session.globalStep) * 1000).rounded() / 1000
        report.cluster = executor.clusterReport
        report.resumeChanges = session.resumeChanges
        for (key, value) in reportExtras?() ?? [:] { report.monitor[key] = value }
        try output.writeReport(report)
        if let timeline { try output.writeFile("timeline.json", timeline.json().serialized(pretty: false) + "\n") }
        do {
            let render = renderHTML ?? renderHTMLReport
            let input = HTMLReportInput(rows: output.rows.map { $0.json.anyValue as? [String: Any] ?? [:] },
                                        report: report.json.anyValue as? [String: Any] ?? [:],
                                        evaluations: output.evaluations.map { ($0.step, $0.loss, $0.accuracy) },
                                        config: String(decoding: session.config.jsonData(pretty: true), as: UTF8.self))
            try? output.writeFile("report.html", render(input))
        }
        progress.line("chorus: \(status) after \(session.globalStep) steps; test accuracy \(testAccuracy.map { String(format: "%.4f", $0) } ?? "n/a"); params_sha256 \(report.paramsSHA256)")
        if let failure { throw RuntimeError.cluster(failure) }
        return report
    }

    /// Goes back to `rewind.state`: the session, metrics.jsonl (rows after it dropped) and the
    /// checkpoints (later ones came from the results being undone: removed, and `latest` is the
    /// restored state again).
    func rewind(to rewind: Rewind) throws {
        let from = session.globalStep, to = rewind.state.globalStep
        if let timeline {
            timeline.instant(.coordinator, "rewind", at: timeline.now(), step: from + 1,
                             args: ["to_step": .integer(to), "reason": .string(rewind.reason)])
            timeline.endStep(from + 1)
        }
        session.restore(rewind.state)
        try output.rewind(toStep: to)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: output.directory)) ?? []
        for name in names where name.hasPrefix("checkpoint-") && name.hasSuffix(".safetensors") {
            if let step = Int(name.dropFirst("checkpoint-".count).dropLast(".safetensors".count)), step > to {
                try? FileManager.default.removeItem(atPath: "\(output.directory)/\(name)")
            }
        }
        if to > 0 { try writeCheckpoint() } else { try? FileManager.default.removeItem(atPath: "\(output.directory)/latest.safetensors") }
        afterRewind?(to)
        progress.line("chorus: \(rewind.reason): going back to the state before step \(to) (\(rewind.basis)) and computing steps \(to)…\(from) again\(rewind.without)")
    }

    /// Writes `checkpoint-STEP` and `latest` (atomically), then removes checkpoints beyond `--keep-checkpoints`.
    func writeCheckpoint() throws {
        try CheckpointIO.write(session: session, directory: output.directory, runID: options.runID)
        guard options.keepCheckpoints > 0 else { return }
        let steps = ((try? FileManager.default.contentsOfDirectory(atPath: output.directory)) ?? []).compactMap { name -> Int? in
            guard name.hasPrefix("checkpoint-"), name.hasSuffix(".safetensors") else { return nil }
            return Int(name.dropFirst("checkpoint-".count).dropLast(".safetensors".count))
        }
        for step in steps.sorted().dropLast(options.keepCheckpoints) {
            try? FileManager.default.removeItem(atPath: "\(output.directory)/checkpoint-\(step).safetensors")
        }
    }
}

/// CPU time this process has used, all threads (CLOCK_PROCESS_CPUTIME_ID), in nanoseconds.
func processCPUNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
