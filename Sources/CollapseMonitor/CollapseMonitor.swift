import Foundation

/// A cause the rules see at one check, before persistence confirms it.
struct Candidate {
    var cause: Cause
    var confidence: Double
    var evidence: String
    var remedy: String
    var actions: [RemedyAction] = []
    var replica: Int? = nil
    /// Certain findings (static facts, non-finite inputs, audit mismatches) need no persistence.
    var certain = false
    /// Where the rule's own evidence began, when it reaches back before the checks that
    /// confirm it (a loss window): the finding's `onset_step` is the earlier of the two.
    var evidenceOnset: Int? = nil
}

/// Watches a training run and tells a collapse and its root cause from the signals of each step.
///
/// Pure logic: no clock, no I/O. The coordinator calls `observe(step:signals:shards:)` every
/// `monitor.interval` steps with the aggregated step signals and the shard signals the workers
/// sent; a run-time finding becomes a collapse once it holds for `settings.persistence`
/// consecutive checks (certain static facts at once). Findings are ranked so that a root cause
/// comes before the symptoms it explains (zero init before dead ReLUs).
public final class CollapseMonitor {
    /// The thresholds in use.
    public let settings: MonitorSettings
    /// What was known before step 1.
    public let facts: StaticFacts
    /// The verdict so far (report.json's `collapse`).
    public private(set) var verdict = CollapseVerdict()
    /// Every alert raised so far, in order (report.json's `alerts`).
    public private(set) var alerts: [Alert] = []
    /// Monitor fields of the latest check for metrics.jsonl (see docs/collapse-monitor.md).
    public private(set) var latestMetrics: [(key: String, value: MonitorMetric)] = []

    var checks = 0
    var losses: [Double] = []
    /// The step of each check and the learning rate applied at it (parallel to `losses`).
    var checkSteps: [Int] = []
    var learningRates: [Double] = []
    /// The merged permuted-label loss gap of each check (NaN: not measured).
    var labelGaps: [Double] = []
    var gradientNorms: [Double] = []
    var updateRatios: [Double] = []
    var initialDead: [String: Double] = [:]
    var streaks: [Cause: (count: Int, onset: Int)] = [:]
    var findings: [Cause: (finding: CauseFinding, candidate: Candidate)] = [:]
    var replicaEvents: [(check: Int, replica: Int, reason: String)] = []
    var auditMismatches: [(step: Int, shard: Int, replicaA: Int, replicaB: Int, suspect: Int?)] = []
    /// Contributions whose received norm differed from the one their sender computed.
    var transitMismatches: [(step: Int, replica: Int)] = []
    var outputCollapseStreak = 0
    var warnedOutputCollapse = false

    /// Creates a monitor with `settings` for a run described by `facts`.
    public init(settings: MonitorSettings = MonitorSettings(), facts: StaticFacts) {
        self.settings = settings
        self.facts = facts
    }

    /// Examines one check's signals and returns the alerts it raised (empty on a quiet step).
    public func observe(step: Int, signals: StepSignals, shards: [(replica: Int, shard: Int, signals: ShardSignals)]) -> [Alert] {
        var raised: [Alert] = []
        if checks == 0 { raised += staticWarnings() }
        checks += 1
        let merged = MergedSignals(shards)
        record(step: step, signals, merged)
        recordReplicaOutliers(shards)
        let candidates = diagnose(step: step, signals: signals, merged: merged)
        var seen = Set<Cause>()
        for candidate in candidates where !seen.contains(candidate.cause) {
            seen.insert(candidate.cause)
            var streak = streaks[candidate.cause] ?? (0, step)
            streak.count += 1
            streaks[candidate.cause] = streak
            let needed = candidate.certain ? 1 : settings.persistence
            if streak.count >= needed && findings[candidate.cause] == nil {
                raised.append(confirm(candidate, step: step, onset: streak.onset))
            }
        }
        for cause in Cause.allCases where !seen.contains(cause) { streaks[cause] = nil }
        raised += outputCollapseWarning(step: step, merged: merged)
        latestMetrics = metrics(signals, merged)
        alerts += raised
        return raised
    }

    /// Records that two replicas computed the same shard with different results (a bitwise
    /// audit): certain evidence of a replica fault.
    /// `suspect` is the replica a third computation of the shard (the coordinator's) disagreed
    /// with while agreeing with the other, when there was one.
    public func recordAuditMismatch(step: Int, shard: Int, replicaA: Int, replicaB: Int, suspect: Int? = nil) {
        auditMismatches.append((step, shard, replicaA, replicaB, suspect))
        let refereed = suspect.map { "; the coordinator's own computation of the shard matches replica \($0 == replicaA ? replicaB : replicaA)'s" } ?? ""
        let candidate = Candidate(
            cause: .replicaFault, confidence: 0.95,
            evidence: "audit at step \(step): replicas \(replicaA) and \(replicaB) computed shard \(shard) with different bits "
                + "(\(auditMismatches.count) mismatch(es) so far)" + refereed + suspectText(),
            remedy: "evict the suspect worker and check its host (memory errors, wrong data, different build)",
            actions: suspectReplica().map { [.evictReplica($0)] } ?? [], replica: suspectReplica(), certain: true)
        if findings[.replicaFault] == nil {
            alerts.append(confirm(candidate, step: step, onset: step))
        } else if let suspect = suspectReplica() {
            findings[.replicaFault]?.candidate.replica = suspect
            findings[.replicaFault]?.candidate.actions = [.evictReplica(suspect)]
            rank()
        }
    }

    /// A contribution that arrived other than its sender computed it: `reported` is the L2 norm
    /// the sender measured on the values it computed (before sending), `received` the norm of the
    /// values that arrived, beyond rounding of the wire format. The bytes changed after the
    /// gradient was computed and before the checksum was taken (bad memory on that host): as
    /// certain as an audit mismatch, and found at the first shard it touches.
    public func recordTransitMismatch(step: Int, shards: Range<Int>, replica: Int, reported: Double, received: Double) {
        transitMismatches.append((step, replica))
        let what = shards.count == 1 ? "shard \(shards.lowerBound)" : "shards \(shards.lowerBound)..<\(shards.upperBound)"
        let candidate = Candidate(
            cause: .replicaFault, confidence: 0.97,
            evidence: "step \(step): replica \(replica) computed \(what) with gradient norm \(format(reported)) but what arrived has norm "
                + "\(format(received)): the values changed after they were computed and before the checksum "
                + "(\(transitMismatches.filter { $0.replica == replica }.count) such contribution(s) from it so far)",
            remedy: "evict worker \(replica) and check its host (memory errors)",
            actions: [.evictReplica(replica)], replica: replica, certain: true)
        if findings[.replicaFault] == nil {
            alerts.append(confirm(candidate, step: step, onset: step))
        } else if let suspect = suspectReplica() {
            // Direct evidence: it names the replica of a finding made on weaker grounds.
            findings[.replicaFault]?.candidate.replica = suspect
            findings[.replicaFault]?.candidate.actions = [.evictReplica(suspect)]
            rank()
        }
    }

    /// Forgets the run's history after a rollback (the restored run is judged afresh);
    /// confirmed findings and alerts stay.
    public func resetAfterRollback() {
        losses.removeAll(); checkSteps.removeAll(); learningRates.removeAll(); labelGaps.removeAll(); gradientNorms.removeAll(); updateRatios.removeAll(); initialDead.removeAll()
        streaks.removeAll(); replicaEvents.removeAll(); outputCollapseStreak = 0
    }

    /// What `--monitor rollback` should apply, from the ranked findings (top cause first, no duplicates).
    public var recommendedActions: [RemedyAction] {
        var result: [RemedyAction] = []
        for finding in verdict.causes {
            guard let cause = Cause(rawValue: finding.cause), let entry = findings[cause] else { continue }
            for action in entry.candidate.actions where !result.contains(action) { result.append(action) }
        }
        return result
    }

    /// The alerts in report form.
    public var alertsJSON: [[String: Any]] { alerts.map(\.json) }

    private func confirm(_ candidate: Candidate, step: Int, onset: Int) -> Alert {
        let evidence = onset < step ? "\(candidate.evidence); since step \(onset)" : candidate.evidence
        var confirmed = candidate
        confirmed.evidence = evidence
        let finding = CauseFinding(cause: candidate.cause.rawValue, confidence: candidate.confidence, step: step,
                                   evidence: evidence, remedy: candidate.remedy,
                                   onsetStep: min(onset, candidate.evidenceOnset ?? onset))
        findings[candidate.cause] = (finding, confirmed)
        if !verdict.detected {
            verdict.detected = true
            verdict.step = step
        }
        rank()
        return Alert(step: step, severity: .critical, cause: candidate.cause.rawValue,
                     message: "collapse: \(candidate.cause.rawValue): \(evidence). Remedy: \(candidate.remedy)")
    }

    /// Orders the findings: a finding explained by another confirmed one loses half its confidence.
    func rank() {
        let confirmed = Set(findings.keys)
        var ranked: [CauseFinding] = []
        for (cause, entry) in findings {
            var finding = entry.finding
            let explainers = confirmed.filter { $0 != cause && $0.explains.contains(cause) && !cause.explains.contains($0) }
            if !explainers.isEmpty { finding.confidence = (finding.confidence * 0.5 * 1000).rounded() / 1000 }
            // A finding confirmed after the first detection that explains none of the earlier
            // ones is more likely a consequence of the collapse than its root.
            let earlier = findings.filter { $0.value.finding.step < entry.finding.step }.map(\.key)
            if !earlier.isEmpty && !earlier.contains(where: { cause.explains.contains($0) }) {
                finding.confidence = (finding.confidence * 0.8 * 1000).rounded() / 1000
            }
            ranked.append(finding)
        }
        let order = Cause.allCases.map(\.rawValue)
        ranked.sort {
            $0.confidence != $1.confidence ? $0.confidence > $1.confidence
                : (order.firstIndex(of: $0.cause) ?? 0) < (order.firstIndex(of: $1.cause) ?? 0)
        }
        verdict.causes = ranked
        if let top = ranked.first, top.cause == Cause.replicaFault.rawValue {
            verdict.replica = findings[.replicaFault]?.candidate.replica
        } else {
            verdict.replica = nil
        }
    }

    /// The replica common to every audit mismatch and outlier event, when exactly one is.
    func suspectReplica() -> Int? {
        // A refereed audit or a changed contribution is direct evidence: the replica named most often.
        var refereed: [Int: Int] = [:]
        for m in transitMismatches { refereed[m.replica, default: 0] += 1 }
        for m in auditMismatches { if let s = m.suspect { refereed[s, default: 0] += 1 } }
        if let top = refereed.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }) { return top.key }
        let outliers = Set(replicaEvents.map(\.replica))
        if outliers.count == 1 { return outliers.first }
        guard !auditMismatches.isEmpty else { return nil }
        var common = Set([auditMismatches[0].replicaA, auditMismatches[0].replicaB])
        for m in auditMismatches.dropFirst() { common.formIntersection([m.replicaA, m.replicaB]) }
        return common.count == 1 ? common.first : nil
    }

    func suspectText() -> String {
        suspectReplica().map { "; suspect replica \($0)" } ?? ""
    }
}
