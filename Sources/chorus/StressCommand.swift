import ArgumentParser
import Cluster
import Foundation
import Stress
import Transport
import Training
import WireProtocol

/// `chorus stress`: many workers, big synthetic gradients, injected faults, every aggregate checked exactly.
struct Stress: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stress-test gradient aggregation (synthetic gradients, faults, exact checks).",
        discussion: "Workers send gradients that are a pure function of (seed, step, shard); the coordinator checks every aggregate bit for bit. Exit status 1 when an aggregate was wrong or a step was lost. See docs/stress.md.")

    @Option(help: "Local worker processes (1…256); with --local-workers, host agents.") var workers: Int = 4
    @Option(name: .customLong("local-workers"), help: "Make each worker a host agent with this many local workers behind it (0…64; 0: plain workers). Agents send node sums of the shard tree over the socket, like hosts of their own.") var localWorkers = 0
    @Option(name: .customLong("local-fault"), parsing: .singleValue, help: "A fault of every agent's local workers (repeatable; worker=K is the local slot): kill:worker=0,every=10 | corrupt:worker=1,rate=0.05 | …") var localFault: [String] = []
    @Option(help: "Parameters (gradient elements) per contribution.") var params: Int = 1_000_000
    @Option(help: "Steps to aggregate.") var steps: Int = 100
    @Option(help: "Shards per step (default: --workers).") var shards: Int?
    @Option(name: .customLong("wire-dtype"), help: "Gradient wire format: fp32, fp16 or bf16 (checked exactly against the rounded contributions).") var wireDType = "fp32"
    @Option(parsing: .singleValue, help: "Inject a fault (repeatable); worker=N is the worker slot: kill:worker=1,every=20 | kill:worker=1,step=50 | slow:worker=2,ms=200 | corrupt:worker=1,rate=0.01 | bitflip:worker=1,rate=0.001 | drop:worker=1,rate=0.05 | delay:worker=1,rate=0.05,ms=100") var fault: [String] = []
    @Option(help: "Endpoint to bind (default: an ipc socket in /tmp; tcp://127.0.0.1:* for loopback TCP).") var endpoint: String?
    @Option(help: "Shards in flight beyond the next one to aggregate (default min(shards, 4)).") var window: Int?
    @Option(help: "Seed of the synthetic gradients.") var seed: UInt64 = 1
    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval, both ways.") var heartbeatMs = 250
    @Option(name: .customLong("timeout-ms"), help: "Evict a worker silent this long.") var timeoutMs = 5_000
    @Option(name: .customLong("straggler-ms"), help: "Floor of the straggler deadline (dropped results are recomputed after it).") var stragglerMs = 300
    @Option(name: .customLong("frame-bytes"), help: "Largest payload frame in bytes (default 64 MiB; training uses 4194304).") var frameBytes = 64 << 20
    @Flag(name: .customLong("no-shm"), help: "Workers send every gradient over the socket, not through the shared-memory pool.") var noSharedMemory = false
    @Option(name: .customLong("shm-slots"), help: "Gradients the shared-memory pool holds at once (1…16; workers use the socket when it is full).") var shmSlots = StressSettings.defaultSharedSlots
    @Flag(name: .customLong("compare-raw"), help: "Also measure raw libzmq PUSH/PULL with the same message size and print the ratio.") var compareRaw = false
    @Option(help: "Write the report as JSON to this file.") var json: String?
    @Flag(help: "No live progress line.") var quiet = false

    func settings() throws -> StressSettings {
        var settings = StressSettings()
        settings.workers = workers
        settings.parameters = params
        settings.steps = steps
        settings.shards = shards
        guard let dtype = WireDType.allCases.first(where: { $0.description == wireDType }) else {
            throw ValidationError("--wire-dtype: unknown \"\(wireDType)\" (expected fp32, fp16 or bf16)")
        }
        settings.wireDType = dtype
        settings.faults = try fault.map(FaultSpec.parse)
        settings.localWorkers = localWorkers
        settings.localFaults = try localFault.map(FaultSpec.parse)
        settings.endpoint = endpoint
        settings.reorderWindow = window
        settings.seed = seed
        settings.heartbeatMs = heartbeatMs
        settings.timeoutMs = timeoutMs
        settings.stragglerMinimumMs = stragglerMs
        settings.frameBytes = frameBytes
        settings.compareRaw = compareRaw
        settings.sharedMemory = !noSharedMemory
        settings.sharedSlots = shmSlots
        try settings.validate()
        return settings
    }

    func run() throws {
        installInterruptHandlers()
        do {
            let settings = try settings()
            let live = !quiet && isatty(STDERR_FILENO) == 1
            let report = try StressCoordinator.run(settings: settings, progress: live ? { report, step in
                let line = String(format: "\rstep %d/%d  %.2f GB/s  p50 %.1f ms  wrong %d  corrupt %d  killed %d ",
                                  step, settings.steps, report.throughputGBps, report.latencies.milliseconds(atPercentile: 50),
                                  report.wrongAggregates, report.corruptDetected, report.kills.count)
                FileOutput.standardError(line)
            } : nil)
            if live { FileOutput.standardError("\r\u{1B}[K") }
            print(report.table)
            if let json {
                do { try (report.json.serialized(pretty: true) + "\n").write(toFile: json, atomically: true, encoding: .utf8) } catch {
                    throw RuntimeError.io("--json \(json): cannot write (\(error))")
                }
            }
            if !report.passed {
                let reason = report.failure ?? "\(report.wrongAggregates) wrong aggregate(s), \(report.stepsLost) lost step(s), \(report.outOfOrderReleases) out-of-order release(s)"
                FileOutput.standardError("chorus: error: stress check failed: \(reason)\n")
                Foundation.exit(1)
            }
        } catch let error as ValidationError { throw error } catch { Launch.fail(error) }
    }
}

/// `chorus stress-worker` (hidden): one synthetic-gradient worker, started by `chorus stress`.
struct StressWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stress-worker", abstract: "A worker of chorus stress.", shouldDisplay: false)
    @Option var connect: String
    @Option(name: .customLong("worker-id")) var workerID: Int = -1
    @Option(name: .customLong("parent-pid")) var parentPID: Int32?
    @Option(name: .customLong("heartbeat-ms")) var heartbeatMs = 250
    @Option(name: .customLong("timeout-ms")) var timeoutMs = 5_000
    @Option(name: .customLong("frame-bytes")) var frameBytes = 64 << 20
    @Option(parsing: .singleValue) var fault: [String] = []
    @Option(name: .customLong("shared-gradients")) var sharedGradients: String?

    func run() throws {
        installInterruptHandlers()
        var options = StressWorkerOptions(connect: connect)
        options.sharedGradients = sharedGradients
        options.workerID = workerID
        options.parentPID = parentPID
        options.heartbeatMs = heartbeatMs
        options.timeoutMs = timeoutMs
        options.frameBytes = frameBytes
        guard frameBytes >= 4096, Int64(frameBytes) <= ZMQMessageTransport.defaultMaxMessageSize else {
            Launch.fail(RuntimeError.invalidSetting("--frame-bytes \(frameBytes): must be between 4096 and \(ZMQMessageTransport.defaultMaxMessageSize)"))
        }
        do {
            options.faults = try fault.map(FaultSpec.parse)
            Foundation.exit(try StressWorker(options: options).run())
        } catch { Launch.fail(error) }
    }
}

/// `chorus stress-agent` (hidden): a host agent of chorus stress, with local stress workers behind it.
struct StressAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stress-agent", abstract: "A host agent of chorus stress.", shouldDisplay: false)
    @Option var connect: String
    @Option(name: .customLong("local-workers")) var localWorkers = 2
    @Option(name: .customLong("worker-id")) var workerID: Int = -1
    @Option(name: .customLong("parent-pid")) var parentPID: Int32?
    @Option(name: .customLong("heartbeat-ms")) var heartbeatMs = 250
    @Option(name: .customLong("timeout-ms")) var timeoutMs = 5_000
    @Option(name: .customLong("frame-bytes")) var frameBytes = 64 << 20
    @Option(parsing: .singleValue) var fault: [String] = []
    @Option(name: .customLong("local-fault"), parsing: .singleValue) var localFault: [String] = []

    func run() throws {
        installInterruptHandlers()
        var options = StressAgentOptions(connect: connect)
        options.localWorkers = localWorkers
        options.workerID = workerID
        options.parentPID = parentPID
        options.heartbeatMs = heartbeatMs
        options.timeoutMs = timeoutMs
        options.frameBytes = frameBytes
        guard localWorkers >= 1, localWorkers <= 64 else { Launch.fail(RuntimeError.invalidSetting("--local-workers \(localWorkers): must be between 1 and 64")) }
        guard frameBytes >= 4096, Int64(frameBytes) <= ZMQMessageTransport.defaultMaxMessageSize else {
            Launch.fail(RuntimeError.invalidSetting("--frame-bytes \(frameBytes): must be between 4096 and \(ZMQMessageTransport.defaultMaxMessageSize)"))
        }
        do {
            options.faults = try fault.map(FaultSpec.parse)
            options.localFaults = try localFault.map(FaultSpec.parse)
            Foundation.exit(try StressAgent(options: options).run())
        } catch { Launch.fail(error) }
    }
}
