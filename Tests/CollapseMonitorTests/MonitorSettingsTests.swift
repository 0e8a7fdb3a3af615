import Foundation
import Testing
@testable import CollapseMonitor

@Suite struct MonitorSettingsTests {
    @Test func unknownThresholdNameIsAnErrorNamingIt() {
        #expect(throws: MonitorError.self) { try MonitorSettings(overrides: ["dead_relu_fractoin": 0.5]) }
        do { _ = try MonitorSettings(overrides: ["dead_relu_fractoin": 0.5]) } catch {
            #expect("\(error)".contains("dead_relu_fractoin"))
        }
    }

    @Test func overridesReplaceDefaults() throws {
        let s = try MonitorSettings(overrides: ["persistence": 3, "dead_relu_fraction": 0.7])
        #expect(s.persistence == 3)
        #expect(s.deadReluFraction == 0.7)
        #expect(s.all["saturation_threshold"] == 5)
        #expect(Set(s.all.keys) == Set(MonitorSettings.names))
    }

    @Test func fractionalPersistenceIsRejected() {
        #expect(throws: MonitorError.self) { try MonitorSettings(overrides: ["persistence": 2.5]) }
    }

    @Test func lowerDeadThresholdCatchesAPartlyDeadLayer() throws {
        var s = Scenario()
        s.layers = { _, _ in Scenario.mlpLayers(dead: [0.75, 0.1]) }
        #expect(!s.run(steps: 20).verdict.detected)
        s.settings = try MonitorSettings(overrides: ["dead_relu_fraction": 0.7])
        #expect(s.run(steps: 20).verdict.cause == "dead_relu")
    }

    @Test func persistenceSetsTheDetectionStep() throws {
        var s = Scenario()
        s.loss = { _ in 2.302 }
        s.layers = { _, _ in Scenario.mlpLayers(dead: [1, 0]) }
        s.settings = try MonitorSettings(overrides: ["persistence": 8])
        #expect(s.run(steps: 20).verdict.step == 8)
    }
}

@Suite struct ReportFormTests {
    @Test func verdictJSONHasTheContractFields() throws {
        var s = Scenario()
        s.layers = { _, _ in Scenario.mlpLayers(dead: [1, 0]) }
        let m = s.run(steps: 10)
        let json = m.verdict.json
        #expect(Set(json.keys) == ["detected", "step", "cause", "causes", "replica"])
        let data = try JSONSerialization.data(withJSONObject: ["collapse": json, "alerts": m.alertsJSON])
        let back = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let collapse = back["collapse"] as! [String: Any]
        #expect(collapse["cause"] as? String == "dead_relu")
        #expect(collapse["replica"] is NSNull)
        let first = (collapse["causes"] as! [[String: Any]])[0]
        // The contract's fields, and onset_step (docs/collapse-monitor.md), never after step.
        #expect(Set(first.keys) == ["cause", "confidence", "step", "onset_step", "evidence", "remedy"])
        #expect((first["onset_step"] as! Int) <= (first["step"] as! Int))
    }

    @Test func healthyVerdictJSONIsEmpty() throws {
        let json = Scenario().run(steps: 10).verdict.json
        #expect(json["detected"] as? Bool == false)
        #expect(json["cause"] is NSNull)
        #expect((json["causes"] as? [Any])?.isEmpty == true)
    }

    @Test func rollbackResetClearsStreaksButKeepsTheVerdict() {
        var s = Scenario()
        s.layers = { _, _ in Scenario.mlpLayers(dead: [1, 0]) }
        let m = s.run(steps: 4)
        m.resetAfterRollback()
        _ = Scenario().run(steps: 10, monitor: m)
        #expect(!m.verdict.detected)
        s.run(steps: 5, monitor: m)
        #expect(m.verdict.cause == "dead_relu")
    }
}
