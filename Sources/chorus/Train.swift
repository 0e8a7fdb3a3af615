import ArgumentParser
import Cluster
import Config
import Foundation
import Stress
import Training

/// Options shared by `train` and `coordinator`: what to train and how.
struct RunOptions: ParsableArguments {
    @Option(help: "Run config (JSON).") var config: String?
    @Option(help: "Shards per global batch (default: the initial worker count, 1 in-process).") var shards: Int?
    @Option(help: "Epochs.") var epochs: Int?
    @Option(name: .customLong("max-steps"), help: "Stop after this many steps.") var maxSteps: Int?
    @Option(name: .customLong("batch-size"), help: "Global batch size.") var batchSize: Int?
    @Option(help: "Learning rate.") var lr: Float?
    @Option(help: "Seed of initialization, shuffling and dropout.") var seed: UInt64?
    @Option(help: "Data: fashion-mnist, a directory of IDX files or of x_train.npy/y_train.npy/x_test.npy/y_test.npy, or an .npz archive with those arrays.") var data: String?
    @Option(help: "Output directory.") var out: String = "out"
    @Option(help: "Collapse monitor policy: warn, stop or rollback.") var monitor: String?
    @Option(name: .customLong("init-from"), help: "Start from the weights in this safetensors file.") var initFrom: String?
    @Option(help: "Resume from the latest checkpoint in this directory.") var resume: String?
    @Flag(name: .customLong("resume-changed"), help: "Resume although settings differ from the checkpoint's (they are listed in report.json's resume_changes).") var resumeChanged = false
    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every K steps too (default 200; 0: only at epoch ends).") var checkpointEvery = TrainOptions.defaultCheckpointEvery
    @Option(name: .customLong("keep-checkpoints"), help: "Keep only the newest N checkpoint-STEP files (0: keep all).") var keepCheckpoints = 0
    @Flag(help: "No progress display.") var quiet = false
    @Flag(name: .customLong("no-monitor"), help: "Run without the collapse monitor (for measuring its overhead).") var noMonitor = false
    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics at http://127.0.0.1:P/metrics while training (0: any free port).") var metricsPort: Int?
    @Option(name: .customLong("metrics-bind"), help: "The IPv4 address --metrics-port listens on (default 127.0.0.1; 0.0.0.0 for every interface).") var metricsBind = "127.0.0.1"
    @Option(name: .customLong("timeline-steps"), help: "OUT/timeline.json keeps the first and last N steps and every step with an event (default 50; 0: none).") var timelineSteps = TrainOptions().timelineSteps
    @Flag(name: .customLong("no-tensorboard"), help: "Write no TensorBoard event files (OUT/tensorboard).") var noTensorboard = false

    /// The config file (or the default) with the flags applied.
    func runConfig() throws -> RunConfig {
        var result = RunConfig.default
        if let config { result = try RunConfig.load(path: config) }
        if let resume, config == nil {
            result = try ResumeSupport.config(fromCheckpointDirectory: resume)
        }
        if let epochs { guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }; result.training.epochs = epochs }
        if let maxSteps { guard maxSteps >= 1 else { throw ValidationError("--max-steps must be at least 1, got \(maxSteps)") }; result.training.maxSteps = maxSteps }
        if let batchSize { guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }; result.training.batchSize = batchSize }
        if let lr { guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number, got \(lr)") }; result.optimizer.lr = lr }
        if let seed { result.training.seed = seed }
        if let shards { guard shards >= 1 else { throw ValidationError("--shards must be at least 1, got \(shards)") }; result.training.shards = shards }
        if let data { result.data.source = try DataArgument.source(data) }
        if let monitor {
            guard let policy = MonitorConfig.Policy(rawValue: monitor) else {
                throw ValidationError("--monitor: unknown policy \"\(monitor)\" (expected warn, stop or rollback)")
            }
            result.monitor.policy = policy
        }
        return result
    }

    func trainOptions(runID: UInt64) -> TrainOptions {
        var options = TrainOptions()
        options.outputDirectory = out
        options.resumeDirectory = resume
        options.initFrom = initFrom
        options.quiet = quiet
        options.runID = runID
        options.monitor = !noMonitor
        options.tensorboard = !noTensorboard
        options.metricsPort = metricsPort
        options.timelineSteps = max(timelineSteps, 0)
        options.metricsBind = metricsBind
        options.checkpointEvery = max(checkpointEvery, 0)
        options.keepCheckpoints = max(keepCheckpoints, 0)
        options.allowChangedResume = resumeChanged
        // A resumed run is the same run: its workers (waiting for their coordinator to come
        // back) rejoin it, and a worker of another run is still told apart.
        if let resume, let id = ResumeSupport.runID(fromCheckpointDirectory: resume) { options.runID = id }
        return options
    }
}

/// `--data`: a named data set or a directory of IDX files.
enum DataArgument {
    static func source(_ value: String) throws -> DataConfig.Source {
        if value == "fashion-mnist" { return .named(value) }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: value, isDirectory: &isDirectory)
        if exists, !isDirectory.boolValue, value.hasSuffix(".npz") { return .npz(path: value) }
        guard exists, isDirectory.boolValue else {
            throw ValidationError("--data: \(value) is neither fashion-mnist, an .npz archive nor a directory")
        }
        if FileManager.default.fileExists(atPath: "\(value)/x_train.npy") {
            return .npy(trainFeatures: "\(value)/x_train.npy", trainLabels: "\(value)/y_train.npy",
                        testFeatures: "\(value)/x_test.npy", testLabels: "\(value)/y_test.npy")
        }
        func pick(_ base: String) -> String {
            let gz = "\(value)/\(base).gz"
            return FileManager.default.fileExists(atPath: gz) ? gz : "\(value)/\(base)"
        }
        return .idx(trainImages: pick("train-images-idx3-ubyte"), trainLabels: pick("train-labels-idx1-ubyte"),
                    testImages: pick("t10k-images-idx3-ubyte"), testLabels: pick("t10k-labels-idx1-ubyte"))
    }
}

/// `chorus train`: trains in-process (`--workers 0`) or with N local worker processes.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a model (in-process with --workers 0, or with N local worker processes).")

    @OptionGroup var options: RunOptions
    @Option(help: "Local worker processes (0: train in this process). Without it, under torchrun or Slurm (WORLD_SIZE/SLURM_NTASKS set), rank 0 is the coordinator and the other ranks are workers.") var workers: Int?
    @Option(parsing: .singleValue, help: "Inject a fault (repeatable): kill:worker=1,step=50 | slow:worker=2,ms=200 | corrupt:worker=1,rate=0.01 | bitflip:worker=1,rate=0.001 | memflip:worker=1,rate=0.001 (docs/operations.md)") var fault: [String] = []
    @OptionGroup var cluster: ClusterOptions

    mutating func validate() throws {
        let workers = self.workers ?? 0
        guard workers >= 0 && workers <= 256 else { throw ValidationError("--workers must be between 0 and 256, got \(workers)") }
        if self.workers != nil && workers == 0 && !fault.isEmpty { throw ValidationError("--fault needs worker processes (--workers ≥ 1)") }
        for text in fault {
            guard let spec = try? FaultSpec.parse(text) else { continue }  // parse errors are reported in run()
            if workers > 0 && spec.worker >= workers {
                throw ValidationError("--fault \(text): there is no worker \(spec.worker) (workers are 0…\(workers - 1))")
            }
        }
    }

    func run() throws {
        installInterruptHandlers()
        if workers == nil, let world = LaunchEnvironment.worldSize, world > 1, let rank = LaunchEnvironment.rank {
            return try runAsRank(rank, of: world)
        }
        let workers = self.workers ?? 0
        let core = cluster.runKernel()
        do {
            var config = try options.runConfig()
            let faults = try fault.map(FaultSpec.parse)
            if config.training.shards == nil { config.training.shards = max(workers, 1) }
            try Launch.train(config: config, workers: workers, faults: faults, options: options.trainOptions(runID: Launch.newRunID()),
                             cluster: try cluster.settings(), blasCore: core)
        } catch let error as ValidationError {
            throw error
        } catch {
            Launch.fail(error)
        }
    }

    /// torchrun / Slurm: rank 0 coordinates (binding MASTER_PORT, expecting WORLD_SIZE − 1
    /// workers); every other rank is a worker connecting to MASTER_ADDR:MASTER_PORT.
    func runAsRank(_ rank: Int, of world: Int) throws {
        let port = LaunchEnvironment.environment["MASTER_PORT"] ?? "5555"
        if rank == 0 {
            let core = cluster.runKernel()
            do {
                var config = try options.runConfig()
                if config.training.shards == nil { config.training.shards = world - 1 }
                let trainOptions = options.trainOptions(runID: Launch.newRunID())
                let session = try Launch.makeSession(config: config, options: trainOptions)
                var settings = try cluster.settings()
                settings.endpoint = "tcp://0.0.0.0:\(port)"
                let executor = try DistributedExecutor.bind(session: session, endpoint: settings.endpoint!, expect: world - 1,
                                                            runID: trainOptions.runID, settings: settings)
                let trainer = try Trainer(session: session, executor: executor, options: trainOptions, blasCore: core)
                if trainOptions.monitor { try MonitorHookup.attach(to: trainer, executor: executor) }
                try trainer.run()
            } catch let error as ValidationError { throw error } catch { Launch.fail(error) }
        } else {
            guard let endpoint = LaunchEnvironment.endpoint else {
                throw ValidationError("rank \(rank) of \(world): MASTER_ADDR is not set, so the coordinator cannot be found")
            }
            _ = BLASEnvironment.verifyOrFallBack()
            var workerOptions = WorkerOptions(connect: endpoint)
            workerOptions.quiet = options.quiet
            workerOptions.timeoutMs = cluster.timeoutMs
            workerOptions.coordinatorTimeoutMs = 60_000  // ranks start in any order; a coordinator may come back
            do {
                workerOptions.faults = try fault.map(FaultSpec.parse)
                workerOptions.curveServerKey = try cluster.settings().curve?.publicKey
                Foundation.exit(try WorkerRunner(options: workerOptions).run())
            } catch { Launch.fail(error) }
        }
    }
}
