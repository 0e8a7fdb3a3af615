import ArgumentParser
import Cluster
import Foundation
import Stress
import TensorCore
import Training
import Transport
import WireProtocol

/// Cluster settings shared by `train` and `coordinator`.
struct ClusterOptions: ParsableArguments {
    @Option(help: "Endpoint the coordinator binds (default for train: an ipc socket in /tmp).") var endpoint: String?
    @Flag(name: .customLong("tcp"), help: "Local workers connect over tcp://127.0.0.1 instead of ipc.") var localTCP = false
    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval, both ways.") var heartbeatMs = 500
    @Option(name: .customLong("timeout-ms"), help: "Evict a worker silent this long; workers exit when the coordinator is.") var timeoutMs = 5_000
    @Option(name: .customLong("no-worker-timeout-ms"), help: "Fail when no worker is left for this long.") var noWorkerTimeoutMs = 30_000
    @Option(name: .customLong("wire-dtype"), help: "Gradient wire format: fp32 (exact), fp16 or bf16 (not bit-reproducible).") var wireDType = "fp32"
    @Option(name: .customLong("audit-every"), help: "Every K steps two workers compute the same shard; results are compared bit for bit (0: never).") var auditEvery = ClusterSettings.defaultAuditEvery
    @Flag(name: .customLong("no-respawn"), help: "Do not replace local workers that die.") var noRespawn = false
    @Flag(name: .customLong("no-shm"), help: "Local workers get the parameters over the socket, not from shared memory.") var noSharedMemory = false
    @Option(name: .customLong("curve-keys"), help: "Encrypt and authenticate the cluster with this CURVE key file (chorus keygen --out FILE); workers need its public key.") var curveKeys: String?
    @Option(name: .customLong("curve-bulk"), help: "With --curve-keys, where the sealed bulk channel (AES-256-GCM under keys agreed over CURVE) binds: next (the port after the endpoint's), a port, any, or off (everything through libzmq's CURVE, ~2.4x slower).") var curveBulk = "next"
    @Option(name: .customLong("blas-core"), help: "The OpenBLAS kernel every process of the run uses (default: this host's, e.g. SkylakeX or Haswell); workers switch to it, and a host whose CPU cannot run it is refused.") var blasCore: String?
    @Option(name: .customLong("probe-every"), help: "Every K steps each worker evaluates the fixed probe batch; replicas must agree bit for bit (0: never).") var probeEvery = 10
    @Flag(name: .customLong("chunk-owners"), help: "Host agents own the parameters' chunks: they send each chunk's piece of their node sums to its owner, owners send the chunks' sums here and pass the updated chunks on (each host moves about 2 × the parameters per step; every worker must be an agent with --peer-bind; no audits).") var chunkOwners = false

    /// Switches this process to `--blas-core` when given (re-executing), then checks the live
    /// kernel; returns its name, the run's kernel.
    func runKernel() -> String {
        if let blasCore {
            do { try BLASEnvironment.adopt(kernel: blasCore) } catch { Launch.fail(error) }
        }
        return BLASEnvironment.verifyOrFallBack()
    }

    func settings() throws -> ClusterSettings {
        var settings = ClusterSettings()
        settings.endpoint = endpoint
        settings.localTCP = localTCP
        guard heartbeatMs >= 10, timeoutMs > heartbeatMs else {
            throw ValidationError("--heartbeat-ms must be ≥ 10 and below --timeout-ms (got \(heartbeatMs) and \(timeoutMs))")
        }
        settings.heartbeatMs = heartbeatMs
        settings.timeoutMs = timeoutMs
        settings.noWorkerTimeoutMs = noWorkerTimeoutMs
        guard let dtype = WireDType.allCases.first(where: { $0.description == wireDType }) else {
            throw ValidationError("--wire-dtype: unknown \"\(wireDType)\" (expected fp32, fp16 or bf16)")
        }
        settings.wireDType = dtype
        guard auditEvery >= 0 else { throw ValidationError("--audit-every must be ≥ 0 (0: never)") }
        settings.auditEvery = auditEvery == 0 ? nil : auditEvery
        settings.respawn = !noRespawn
        settings.sharedMemory = !noSharedMemory
        if let curveKeys {
            do { settings.curve = try CurveKeys.load(path: curveKeys) } catch { throw ValidationError("--curve-keys: \(error)") }
        }
        do { settings.curveBulk = try ClusterSocket.CurveBulk(parsing: curveBulk) } catch { throw ValidationError("\(error)") }
        guard probeEvery >= 0 else { throw ValidationError("--probe-every must be ≥ 0") }
        settings.probeEvery = probeEvery
        // The agents' peer mesh is not encrypted: refuse rather than send pieces in clear.
        if chunkOwners && settings.curve != nil {
            throw ValidationError("--chunk-owners with --curve-keys: the agents' peer traffic (pieces and chunks) is not encrypted yet; run one or the other (docs/operations.md, threat model)")
        }
        if chunkOwners && dtype != .fp32 {
            throw ValidationError("--chunk-owners with --wire-dtype \(wireDType): chunk owners send fp32 (exact) pieces and sums")
        }
        settings.chunkOwners = chunkOwners
        settings.kernel = BLAS.coreName
        return settings
    }
}

/// Reads torchrun / Slurm conventions: rank 0 is the coordinator.
enum LaunchEnvironment {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }
    static var rank: Int? { environment["RANK"].flatMap(Int.init) ?? environment["SLURM_PROCID"].flatMap(Int.init) }
    static var worldSize: Int? { environment["WORLD_SIZE"].flatMap(Int.init) ?? environment["SLURM_NTASKS"].flatMap(Int.init) }
    static var endpoint: String? {
        guard let address = environment["MASTER_ADDR"] ?? environment["CHORUS_COORDINATOR_ADDR"] else { return nil }
        return "tcp://\(address):\(environment["MASTER_PORT"] ?? "5555")"
    }
}

/// `chorus coordinator`: runs only the coordinator; workers connect from anywhere.
struct Coordinator: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the coordinator; workers connect with `chorus worker --connect`.")
    @OptionGroup var options: RunOptions
    @OptionGroup var cluster: ClusterOptions
    @Option(help: "Endpoint to bind, e.g. tcp://0.0.0.0:5555 (default from MASTER_PORT).") var bind: String?
    @Option(help: "Workers to wait for before step 1 (default WORLD_SIZE − 1 or SLURM_NTASKS − 1).") var expect: Int?

    func run() throws {
        installInterruptHandlers()
        let core = cluster.runKernel()
        do {
            var config = try options.runConfig()
            let endpoint = bind ?? LaunchEnvironment.environment["MASTER_PORT"].map { "tcp://0.0.0.0:\($0)" } ?? "tcp://0.0.0.0:5555"
            guard let expected = expect ?? LaunchEnvironment.worldSize.map({ $0 - 1 }) else {
                throw ValidationError("--expect N is required (or WORLD_SIZE / SLURM_NTASKS)")
            }
            guard expected >= 1 && expected <= 4096 else { throw ValidationError("--expect must be between 1 and 4096 workers, got \(expected)") }
            if config.training.shards == nil { config.training.shards = expected }
            let trainOptions = options.trainOptions(runID: Launch.newRunID())
            let session = try Launch.makeSession(config: config, options: trainOptions)
            let executor = try DistributedExecutor.bind(session: session, endpoint: endpoint, expect: expected,
                                                        runID: trainOptions.runID, settings: try cluster.settings())
            let trainer = try Trainer(session: session, executor: executor, options: trainOptions, blasCore: core)
            if trainer.options.monitor { try MonitorHookup.attach(to: trainer, executor: executor) }
            try trainer.run()
        } catch let error as ValidationError { throw error } catch { Launch.fail(error) }
    }
}

/// `chorus worker`: computes shards for a coordinator.
struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one worker that connects to a coordinator.")
    @Option(help: "Coordinator endpoint, e.g. tcp://host:5555 (default from MASTER_ADDR/MASTER_PORT).") var connect: String?
    @Option(name: .customLong("worker-id"), help: "Ask for this worker id.") var workerID: Int = -1
    @Option(name: .customLong("parent-pid"), help: .hidden) var parentPID: Int32?
    @Option(name: .customLong("heartbeat-ms")) var heartbeatMs = 500
    @Option(name: .customLong("timeout-ms"), help: "The coordinator silent this long counts as gone.") var timeoutMs = 5_000
    @Option(name: .customLong("coordinator-timeout-ms"), help: "Wait this long for a coordinator that is not up yet, or for one that went away to come back (restarted with --resume), before exiting; 0: exit as soon as it is gone.") var coordinatorTimeoutMs = 60_000
    @Option(parsing: .singleValue, help: "Inject a fault into this worker (see train --help); with --local-workers, into local worker slot worker=K.") var fault: [String] = []
    @Option(name: .customLong("local-workers"), help: "Run as this host's agent: one connection to the coordinator, N local worker processes behind it that share the parameters through shared memory and whose shard gradients the agent sums before sending them up.") var localWorkers = 0
    @Option(name: .customLong("agent-fault"), parsing: .singleValue, help: "With --local-workers: inject a fault (corrupt, bitflip, memflip, drop, delay, slow; worker= is ignored) into the node sums the agent sends up.") var agentFault: [String] = []
    @Option(name: .customLong("peer-bind"), help: "With --local-workers: bind this agent's peer endpoint for a coordinator running --chunk-owners, e.g. tcp://10.0.0.2:6000 (an address the other agents reach; port 0: any free one).") var peerBind: String?
    @Option(name: .customLong("data"), help: "Read this data instead of the coordinator's (testing).") var data: String?
    @Option(name: .customLong("shared-parameters"), help: .hidden) var sharedParameters: String?
    @Option(name: .customLong("shared-gradients"), help: .hidden) var sharedGradients: String?
    @Option(name: .customLong("curve-server-key"), help: "The coordinator's CURVE public key (40 characters, or its key file); write --curve-server-key=KEY, since a key may start with \"-\".") var curveServerKey: String?
    @Option(name: .customLong("pretend-protocol-version"), help: .hidden) var pretendProtocolVersion: UInt16?
    @Option(name: .customLong("pretend-build"), help: .hidden) var pretendBuild: String?
    @Flag var quiet = false

    func run() throws {
        installInterruptHandlers()
        _ = BLASEnvironment.verifyOrFallBack()
        guard let endpoint = connect ?? LaunchEnvironment.endpoint else {
            throw ValidationError("--connect ENDPOINT is required (or MASTER_ADDR and MASTER_PORT)")
        }
        var options = WorkerOptions(connect: endpoint)
        options.workerID = workerID
        options.parentPID = parentPID
        options.heartbeatMs = heartbeatMs
        options.timeoutMs = timeoutMs
        guard coordinatorTimeoutMs >= 0 else { throw ValidationError("--coordinator-timeout-ms must be ≥ 0") }
        options.coordinatorTimeoutMs = coordinatorTimeoutMs == 0 ? nil : coordinatorTimeoutMs
        options.quiet = quiet
        options.pretendProtocolVersion = pretendProtocolVersion
        options.pretendBuild = pretendBuild
        do {
            if let curveServerKey { options.curveServerKey = try CurveKeys.serverKey(curveServerKey) }
            options.sharedParameters = sharedParameters
            options.sharedGradients = sharedGradients
            options.faults = try fault.map(FaultSpec.parse)
            if let data { options.dataOverride = try DataArgument.source(data); options.dataArgument = data }
            guard localWorkers >= 0, localWorkers <= 256 else { throw ValidationError("--local-workers must be 0…256, got \(localWorkers)") }
            if localWorkers > 0 {
                guard sharedParameters == nil, sharedGradients == nil else { throw ValidationError("--local-workers cannot be a coordinator's local worker itself") }
                options.localWorkers = localWorkers
                options.peerBind = peerBind
                options.agentFaults = try agentFault.map(FaultSpec.parse)
                if let kill = options.agentFaults.first(where: { $0.kind == .kill }) {
                    throw ValidationError("--agent-fault \(kill): kill the agent with a signal; kill faults go to local workers with --fault")
                }
                if let slot = options.faults.first(where: { $0.worker >= localWorkers }) {
                    throw ValidationError("--fault \(slot): worker=\(slot.worker) is not a local worker slot (0…\(localWorkers - 1))")
                }
                Foundation.exit(try HostAgent(options: options).run())
            }
            guard agentFault.isEmpty else { throw ValidationError("--agent-fault needs --local-workers N") }
            guard peerBind == nil else { throw ValidationError("--peer-bind needs --local-workers N (chunk owners are host agents)") }
            let runner = try WorkerRunner(options: options)
            Foundation.exit(runner.run())
        } catch let error as ValidationError { throw error } catch { Launch.fail(error) }
    }
}

/// `chorus keygen`: a CURVE key pair (Z85) for authenticated clusters.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make a CURVE key pair for authenticated clusters.",
        discussion: "With --out, writes the pair to FILE (mode 0600) for `--curve-keys FILE` and prints the public key for workers' `--curve-server-key`.")
    @Option(help: "Write the key pair to this file instead of printing both keys.") var out: String?
    @Flag(help: "Overwrite an existing key file (workers holding the old public key can no longer join).") var force = false

    func run() throws {
        do {
            let keys = try CurveKeys.generate()
            guard let out else { print(keys.text, terminator: ""); return }
            if FileManager.default.fileExists(atPath: out) && !force {
                throw RuntimeError.io("\(out) exists; pass --force to replace it (workers with its public key could no longer join)")
            }
            if force { try? FileManager.default.removeItem(atPath: out) }
            guard FileManager.default.createFile(atPath: out, contents: Data(keys.text.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw RuntimeError.io("\(out): cannot write the key file")
            }
            print("public: \(keys.publicKey)")
        } catch { Launch.fail(error) }
    }
}
