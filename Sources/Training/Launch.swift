#if canImport(Glibc)
import Glibc
#endif
import Checkpoint
import Cluster
import Config
import Foundation
import Signals

/// Where a process's run starts: building the session and choosing the executor.
public enum Launch {
    /// A fresh random run id (never 0).
    public static func newRunID() -> UInt64 { RunID.fresh() }

    /// Prints one clear line and exits non-zero.
    public static func fail(_ error: Error) -> Never {
        FileOutput.standardError("chorus: error: \(error)\n")
        exit(1)
    }

    /// Builds the session (resuming or initializing from a file as asked).
    public static func makeSession(config: RunConfig, options: TrainOptions) throws -> TrainingSession {
        let session = try TrainingSession(config: config, shards: config.training.shards ?? 1)
        if let initFrom = options.initFrom {
            let file: SafetensorsFile
            do { file = try SafetensorsReader.read(path: initFrom) } catch { throw RuntimeError.checkpoint("--init-from: \(error)") }
            do { try CheckpointIO.verify(file) } catch { throw RuntimeError.checkpoint("--init-from: \(error)") }
            try CheckpointIO.loadWeights(into: session.model, from: file)
        }
        if let resume = options.resumeDirectory {
            let file = try ResumeSupport.newestGoodCheckpoint(in: resume)
            if let saved = file.metadata["config"].flatMap({ try? RunConfig.parse(jsonData: Data($0.utf8), source: file.path) }) {
                // max_steps may grow (train on) and the monitor may change; anything else would
                // make a different run under the same name.
                let changed = config.differences(from: saved, ignoring: ["training.max_steps", "monitor"])
                if !changed.isEmpty && !options.allowChangedResume {
                    throw RuntimeError.checkpoint("--resume \(resume): the checkpoint was made with other settings: \(changed.joined(separator: ", ")) differ; resume with the same ones, or pass --resume-changed to train on with the new ones (recorded in report.json)")
                }
                session.resumeChanges = changed
            }
            try CheckpointIO.resume(session: session, from: file)
        }
        if options.monitor { _ = session.trainSummary }
        return session
    }

    /// `chorus train`: in-process with 0 workers, otherwise a coordinator plus local workers.
    public static func train(config: RunConfig, workers: Int, faults: [FaultSpec], options: TrainOptions,
                             cluster: ClusterSettings, blasCore: String) throws {
        let session = try makeSession(config: config, options: options)
        let executor: StepExecutor
        if workers == 0 {
            executor = InProcessExecutor(session: session)
        } else {
            executor = try DistributedExecutor.launchLocal(session: session, workers: workers, faults: faults,
                                                           runID: options.runID, settings: cluster)
        }
        let trainer = try Trainer(session: session, executor: executor, options: options, blasCore: blasCore)
        if trainer.options.monitor { try MonitorHookup.attach(to: trainer, executor: executor) }
        try trainer.run()
    }
}

/// Restores a run's config from its checkpoint directory (for `--resume` without `--config`).
public enum ResumeSupport {
    /// The newest checkpoint in `directory` that reads and passes its checksum: `latest`, or
    /// when that is damaged, the `checkpoint-STEP` files from the newest down (said on stderr).
    public static func newestGoodCheckpoint(in directory: String) throws -> SafetensorsFile {
        if let known = chosen[directory] { return known }
        let file = try findNewestGoodCheckpoint(in: directory)
        chosen[directory] = file
        return file
    }

    /// What `newestGoodCheckpoint` found, by directory (the config, the run id and the state come from one file, read once).
    nonisolated(unsafe) static var chosen: [String: SafetensorsFile] = [:]

    static func findNewestGoodCheckpoint(in directory: String) throws -> SafetensorsFile {
        let steps = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap { name -> Int? in
            guard name.hasPrefix("checkpoint-"), name.hasSuffix(".safetensors") else { return nil }
            return Int(name.dropFirst("checkpoint-".count).dropLast(".safetensors".count))
        }.sorted(by: >)
        let candidates = [directory + "/latest.safetensors"] + steps.map { "\(directory)/checkpoint-\($0).safetensors" }
        var firstError: Error?
        for path in candidates where FileManager.default.fileExists(atPath: path) {
            do {
                let file: SafetensorsFile
                do { file = try SafetensorsReader.read(path: path) } catch { throw RuntimeError.checkpoint("\(error)") }
                try CheckpointIO.verify(file)
                if let firstError { logLine("chorus: \(firstError); resuming from \(path) instead") }
                return file
            } catch {
                firstError = firstError ?? error
            }
        }
        throw firstError ?? RuntimeError.checkpoint("--resume \(directory): no checkpoint there (latest.safetensors or checkpoint-STEP.safetensors)")
    }

    /// The run id a checkpoint directory's latest checkpoint was written by (nil: none readable).
    public static func runID(fromCheckpointDirectory directory: String) -> UInt64? {
        (try? newestGoodCheckpoint(in: directory))?.metadata["run_id"].flatMap(UInt64.init)
    }

    public static func config(fromCheckpointDirectory directory: String) throws -> RunConfig {
        let file = try newestGoodCheckpoint(in: directory)
        let path = file.path
        guard let json = file.metadata["config"] else { throw RuntimeError.checkpoint("\(path): no config in the checkpoint metadata") }
        var config = try RunConfig.parse(jsonData: Data(json.utf8), source: path)
        if let shards = file.metadata["shards"].flatMap(Int.init) { config.training.shards = shards }
        return config
    }
}
