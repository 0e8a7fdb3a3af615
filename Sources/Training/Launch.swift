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
        FileHandle.standardError.write("chorus: error: \(error)\n".data(using: .utf8)!)
        exit(1)
    }

    /// Builds the session (resuming or initializing from a file as asked).
    public static func makeSession(config: RunConfig, options: TrainOptions) throws -> TrainingSession {
        let session = try TrainingSession(config: config, shards: config.training.shards ?? 1)
        if let initFrom = options.initFrom {
            let file: SafetensorsFile
            do { file = try SafetensorsReader.read(path: initFrom) } catch { throw RuntimeError.checkpoint("--init-from: \(error)") }
            try CheckpointIO.loadWeights(into: session.model, from: file)
        }
        if let resume = options.resumeDirectory {
            try CheckpointIO.resume(session: session, from: resume + "/latest.safetensors")
        }
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
    /// The run id a checkpoint directory's latest checkpoint was written by (nil: none readable).
    public static func runID(fromCheckpointDirectory directory: String) -> UInt64? {
        (try? SafetensorsReader.read(path: directory + "/latest.safetensors"))?.metadata["run_id"].flatMap(UInt64.init)
    }

    public static func config(fromCheckpointDirectory directory: String) throws -> RunConfig {
        let path = directory + "/latest.safetensors"
        let file: SafetensorsFile
        do { file = try SafetensorsReader.read(path: path) } catch { throw RuntimeError.checkpoint("--resume: \(error)") }
        guard let json = file.metadata["config"] else { throw RuntimeError.checkpoint("\(path): no config in the checkpoint metadata") }
        var config = try RunConfig.parse(jsonData: Data(json.utf8), source: path)
        if let shards = file.metadata["shards"].flatMap(Int.init) { config.training.shards = shards }
        return config
    }
}
