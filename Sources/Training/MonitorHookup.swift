import Cluster
import CollapseMonitor
import Config
import Foundation
import NeuralNet
import Optimizers
import Signals
import TensorCore

/// Connects the collapse monitor to a training run: shard signals from every replica, step
/// signals from the averaged gradient, alerts in the progress display, metrics and report,
/// and the `--monitor` policy (warn, stop, rollback).
public final class MonitorHookup {
    let monitor: CollapseMonitor
    /// Alerts raised so far (--metrics-port counts them).
    var alertCount = 0
    unowned let trainer: Trainer
    let policy: MonitorConfig.Policy
    var pendingShards: [(replica: Int, shard: Int, signals: ShardSignals)] = []
    var newAlerts: [Alert] = []
    /// Critical alerts already acted on (rollback acts once per new detection).
    var actedCritical = 0
    var lastRollbackStep = 0
    var actions: [String] = []
    /// Parameters, running statistics and optimizer state at the last steps judged healthy
    /// (rollback): up to `snapshotCount`, taken every 10 steps, oldest first. A rollback restores
    /// the newest one from before the top finding's `onset_step` (a fault found 5–20 steps after
    /// it began has already spoiled the snapshots taken since).
    var snapshots: [(step: Int, parameters: [Float], buffers: [Float], optimizer: [[Float]], optimizerStep: Int)] = []
    static let snapshotCount = 3
    weak var distributed: DistributedExecutor?
    /// The last step signals with fresh weight statistics (`measuresWeights(atStep:)`: weights
    /// change slowly, gradients are measured every step).
    var lastFullSignals: StepSignals?
    /// Probe results of the current step, by replica.
    var pendingProbes: [(replica: Int, probe: ProbeSignals)] = []
    var probeMetrics: [String: Any] = [:]

    init(trainer: Trainer, settings: MonitorSettings) {
        let session = trainer.session
        self.trainer = trainer
        policy = session.config.monitor.policy
        monitor = CollapseMonitor(settings: settings, facts: staticFacts(config: session.config, model: session.model, train: session.data.train,
                                                                               summary: session.trainSummary))
    }

    /// Attaches the monitor to `trainer`; a bad threshold name fails the run with a clear error.
    public static func attach(to trainer: Trainer, executor: StepExecutor) throws {
        let settings: MonitorSettings
        do { settings = try MonitorSettings(overrides: trainer.session.config.monitor.thresholds) } catch {
            throw RuntimeError.invalidSetting("monitor.thresholds: \(error)")
        }
        let hookup = MonitorHookup(trainer: trainer, settings: settings)
        hookup.install(executor: executor)
        trainer.attachments.append(hookup)
    }

    /// Whether step `step` (0-based) recomputes the weight statistics: every step for the first
    /// 20, every 10th up to step 100, then every 20th. The pass reads every weight (2.8 MB for the
    /// default MLP) from memory: every 10th step it cost ≈ 1 % of the default run's CPU time per
    /// step, every 20th ≈ half that (docs/benchmarks.md). What it feeds — identical rows (a
    /// symmetric initialization) and the weight std in the evidence — is set by the
    /// initialization and changes slowly; a late symmetry is still measured within 20 steps.
    package static func measuresWeights(atStep step: Int) -> Bool {
        step < 20 || (step < 100 ? step % 10 == 0 : step % 20 == 0)
    }

    /// Whether a contribution's norm on arrival says its values changed after the sender measured
    /// them. On an fp32 wire both sides run the same function (`GradientClipping.globalNorm`, fixed
    /// lanes and order) over the same values, so a healthy contribution gives the same bits: any
    /// difference is a change. Two non-finite norms (a diverging run) say nothing.
    package static func changedInTransit(reported: Double, received: Double) -> Bool {
        if reported == received { return false }
        if !reported.isFinite && !received.isFinite { return false }
        return true
    }

    func install(executor: StepExecutor) {
        let session = trainer.session
        if let local = executor as? InProcessExecutor {
            let saturation = Float(monitor.settings.saturationThreshold)
            local.collector = SignalCollector(saturationThreshold: saturation, lossKind: session.config.loss)
            local.shardSignals = { [unowned self] shard, signals in
                var signals = signals
                signals.gradientNorm = -1
                pendingShards.append((0, shard, signals))
            }
        }
        if let remote = executor as? DistributedExecutor {
            distributed = remote
            let parameterCount = session.model.parameters.count
            // The transit check measures the same function over the whole contribution: the same
            // value when the contribution is the parameters' gradient alone (no batch-norm statistics).
            let reuseTransitNorm = parameterCount == session.model.contributionCount
            remote.shardSignals = { [unowned self] received in
                // Measured here, as received: a worker with bad memory cannot misreport it (a node
                // sum's norm, per example, stands for each of its shards).
                // With chunk owners the values are not here: the sender's own norm of its node sum.
                let raw = received.contribution.map { contribution in
                    (reuseTransitNorm ? received.receivedNorm : nil) ?? GradientClipping.globalNorm(contribution, count: parameterCount)
                } ?? received.receivedNorm
                let norm = raw.map { $0 / Double(max(received.count, 1)) } ?? -1
                for (shard, blob) in zip(received.shards, received.signals) {
                    guard var signals = try? ShardSignals.decode(blob) else { continue }
                    signals.gradientNorm = norm
                    pendingShards.append((Int(received.worker), shard, signals))
                }
            }
            remote.gradientStatistics = { [unowned self] worker, bytes in
                // One probe per worker and step, from whichever of its results arrives first.
                guard !pendingProbes.contains(where: { $0.replica == Int(worker) }),
                      let probe = (try? ShardSignals.decode(bytes))?.probe else { return }
                pendingProbes.append((Int(worker), probe))
            }
            // A contribution that changed after it was computed (the executor recomputes it).
            remote.transitMismatch = { [unowned self] worker, step, shards, reported, received in
                monitor.recordTransitMismatch(step: step, shards: shards, replica: Int(worker), reported: reported, received: received)
            }
            remote.auditMismatch = { [unowned self] pair, suspect in
                monitor.recordAuditMismatch(step: pair.step + 1, shard: pair.shard, replicaA: Int(pair.workerA), replicaB: Int(pair.workerB),
                                            suspect: suspect.map { Int($0) })
            }
        }
        let interval = max(session.config.monitor.interval, 1)
        session.beforeUpdate = { [unowned self] averaged, norm, loss, step in
            defer { pendingShards.removeAll(keepingCapacity: true); pendingProbes.removeAll() }
            compareProbes(step: step + 1)
            guard step % interval == 0 else { return }
            let monitorStarted = monotonicNanos()
            defer { trainer.timeline?.span(.coordinator, "monitor", from: monitorStarted, to: monotonicNanos(), step: step + 1) }
            let model = session.model
            let clipNorm = session.optimizer.config.clipNorm
            let full = Self.measuresWeights(atStep: step)
            let signals = computeStepSignals(
                model: model, gradient: averaged, previousParameters: nil, step: step + 1, loss: loss, gradNorm: norm,
                clipped: clipNorm.map { norm > Double($0) } ?? false, lr: Double(session.optimizer.currentLearningRate),
                reusingWeightsOf: full ? nil : lastFullSignals,
                gradientSquares: session.tensorSquares)
            if full { lastFullSignals = signals }
            newAlerts += monitor.observe(step: step + 1, signals: signals, shards: pendingShards)
        }
        trainer.afterStep = { [unowned self] result, row in
            for (key, value) in monitor.latestMetrics {
                switch value {
                case .number(let x): row.extra[key] = .real(x)
                case .integer(let n): row.extra[key] = .integer(n)
                case .map(let members): row.extra[key] = .object(members.map { (key: $0.0, value: .real($0.1)) })
                }
            }
            for (key, value) in probeMetrics { row.extra[key] = JSONValue(any: value) }
            probeMetrics.removeAll()
            alertCount += newAlerts.count
            for alert in newAlerts {
                trainer.progress.line("chorus monitor: step \(alert.step): \(alert.severity.rawValue): \(alert.message)")
                try? trainer.output.recordText("collapse", "**\(alert.severity.rawValue)**: \(alert.message)", step: alert.step)
            }
            newAlerts.removeAll()
            return react(result)
        }
        trainer.afterRewind = { [unowned self] step in
            // Snapshots taken after the restored state came from undone results.
            snapshots.removeAll { $0.step > step }
            // The steps after the restored state are computed again: judged afresh, from the
            // restored state (a healthy snapshot from those steps came from the undone results).
            pendingShards.removeAll(keepingCapacity: true)
            pendingProbes.removeAll()
            probeMetrics.removeAll()
            lastFullSignals = nil
            monitor.resetAfterRollback()
            if policy == .rollback { snapshot() }
        }
        trainer.collapseState = { [unowned self] in (monitor.verdict, alertCount) }
        trainer.reportExtras = { [unowned self] in
            var collapse = monitor.verdict.json
            if !actions.isEmpty { collapse["actions"] = actions }
            return ["collapse": JSONValue(any: collapse), "alerts": JSONValue(any: monitor.alertsJSON), "monitor_policy": .string(policy.rawValue)]
        }
        trainer.renderHTML = { input in
            renderHTMLReport(input)
        }
        if policy == .rollback { snapshot() }  // the initial parameters are the first healthy state
    }

    /// Compares the replicas' probe results: variance across examples into the metrics, and a
    /// replica whose outputs differ from the others' bits is reported as a replica fault.
    func compareProbes(step: Int) {
        guard !pendingProbes.isEmpty else { return }
        let variances = pendingProbes.map(\.probe.meanVariance)
        let disagreements = ProbeComparison.disagreements(pendingProbes)
        probeMetrics = [
            "probe_output_variance": variances.reduce(0, +) / Double(variances.count),
            "probe_distinct_predictions": pendingProbes.map(\.probe.distinctPredictions).min() ?? 0,
            "probe_replicas": pendingProbes.count,
            "probe_replicas_agree": disagreements.isEmpty,
        ]
        for (a, b) in disagreements {
            trainer.progress.line("chorus monitor: step \(step): probe outputs of worker \(b) differ from worker \(a)'s with the same parameters")
            monitor.recordAuditMismatch(step: step, shard: -1, replicaA: a, replicaB: b)
        }
    }

    /// Applies the policy; returns false to stop the run.
    func react(_ result: StepResult) -> Bool {
        // A replica fault the coordinator has quarantined (and undone) is handled, whatever the policy.
        let handled = monitor.verdict.cause == "replica_fault"
            && monitor.verdict.replica.map { distributed?.isQuarantined(UInt32($0)) ?? false } ?? false
        guard monitor.verdict.detected, !handled else {
            if policy == .rollback && (result.globalStep + 1) % 10 == 0 { snapshot() }
            return true
        }
        switch policy {
        case .warn:
            return true
        case .stop:
            trainer.progress.line("chorus monitor: stopping: \(monitor.verdict.cause ?? "collapse") (--monitor stop)")
            return false
        case .rollback:
            let critical = monitor.alerts.filter { $0.severity == .critical }.count
            guard critical > actedCritical else {
                // Already handled; quiet for 20 steps since the rollback means healthy again.
                if result.globalStep - lastRollbackStep >= 20 && (result.globalStep + 1) % 10 == 0 { snapshot() }
                return true
            }
            actedCritical = critical
            lastRollbackStep = result.globalStep
            let recommended = monitor.recommendedActions
            guard !recommended.isEmpty, actions.count < 20 else {
                trainer.progress.line("chorus monitor: no automatic remedy for \(monitor.verdict.cause ?? "collapse"); stopping")
                return false
            }
            restoreSnapshot()
            for action in recommended { apply(action) }
            monitor.resetAfterRollback()
            return true
        }
    }

    func snapshot() {
        let model = trainer.session.model, optimizer = trainer.session.optimizer
        snapshots.append((trainer.session.globalStep, model.parameters.valueArray, model.buffers.valueArray, optimizer.stateArrays, optimizer.step))
        if snapshots.count > Self.snapshotCount { snapshots.removeFirst(snapshots.count - Self.snapshotCount) }
    }

    func restoreSnapshot() {
        // The newest snapshot whose parameters predate the onset (they computed steps up to it).
        let onset = monitor.verdict.causes.first?.onsetStep ?? Int.max
        guard let healthy = snapshots.last(where: { $0.step < onset }) ?? snapshots.first else {
            actions.append("step \(trainer.session.globalStep): no healthy snapshot yet; kept current parameters")
            return
        }
        let model = trainer.session.model
        healthy.parameters.withUnsafeBufferPointer { model.parameters.load($0.baseAddress!) }
        healthy.buffers.withUnsafeBufferPointer { if let base = $0.baseAddress { model.buffers.load(base) } }
        trainer.session.optimizer.restore(state: healthy.optimizer, step: healthy.optimizerStep)
        actions.append("step \(trainer.session.globalStep): restored parameters of step \(healthy.step)"
            + (onset < Int.max ? " (onset estimated at step \(onset))" : ""))
    }

    func apply(_ action: RemedyAction) {
        let session = trainer.session
        let step = session.globalStep
        switch action {
        case .scaleLearningRate(let factor):
            session.optimizer.learningRateScale *= Float(factor)
            actions.append("step \(step): scaled the learning rate back by \(String(format: "%.3g", factor)) to \(String(format: "%.3g", session.optimizer.currentLearningRate)) (the rate before its jump)")
        case .halveLearningRate:
            session.optimizer.learningRateScale *= 0.5
            // A rate that made the loss diverge is rarely fixed by one halving: keep halving
            // down to 1.0 (the top of the sane range for SGD on normalized inputs).
            if monitor.verdict.cause == "learning_rate_too_high" {
                while session.optimizer.currentLearningRate > 1.0 { session.optimizer.learningRateScale *= 0.5 }
            }
            actions.append("step \(step): halved the learning rate to \(session.optimizer.currentLearningRate)")
        case .enableClipping(let norm):
            if session.optimizer.config.clipNorm == nil {
                session.optimizer.config.clipNorm = Float(norm)
                actions.append("step \(step): enabled global-norm clipping at \(norm)")
            }
        case .reinitializeDeadUnits(let layers), .reinitializeLayers(let layers):
            reinitialize(layers: layers, step: step)
        case .evictReplica(let replica):
            distributed?.evict(worker: UInt32(replica), reason: "collapse monitor: replica fault")
            actions.append("step \(step): evicted worker \(replica)")
        }
        for line in actions.suffix(1) { trainer.progress.line("chorus monitor: \(line)") }
    }

    /// Fresh He-uniform weights (zero bias) for the named layers' weight matrices.
    func reinitialize(layers: [String], step: Int) {
        let model = trainer.session.model
        for (index, entry) in model.parameters.entries.enumerated() where layers.contains(where: { entry.name == "\($0).weight" || entry.name == "\($0).bias" }) {
            let tensor = model.parameters.tensor(index)
            if entry.name.hasSuffix(".bias") {
                tensor.data.update(repeating: 0, count: entry.count)
            } else {
                var rng = DeterministicRNG(key: [trainer.session.config.training.seed, 0x5245_494E, UInt64(step), UInt64(index)])
                WeightInitialization.fill(tensor.data, shape: entry.shape, initializer: .heUniform, rng: &rng)
            }
        }
        actions.append("step \(step): re-initialized \(layers.joined(separator: ", "))")
    }
}
