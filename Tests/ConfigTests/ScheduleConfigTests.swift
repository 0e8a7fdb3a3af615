import Foundation
import Testing
@testable import Config

// Reference values follow PyTorch's StepLR / CosineAnnealingLR closed forms, written out here.

@Test func stepScheduleDecaysByGammaEveryStepSizeSteps() {
    let schedule = ScheduleConfig.step(stepSize: 10, gamma: 0.5)
    #expect(schedule.learningRate(atStep: 0, base: 0.1, totalSteps: 100) == 0.1)
    #expect(schedule.learningRate(atStep: 9, base: 0.1, totalSteps: 100) == 0.1)
    #expect(schedule.learningRate(atStep: 10, base: 0.1, totalSteps: 100) == 0.05)
    #expect(schedule.learningRate(atStep: 35, base: 0.1, totalSteps: 100) == 0.0125)
}

@Test func cosineScheduleFollowsTheHalfCosineAndHoldsAtTheMinimum() {
    let schedule = ScheduleConfig.cosine(totalSteps: nil, minLR: 0.001)
    for t in [0, 25, 50, 99, 100] {
        let expected = 0.001 + (0.1 - 0.001) * (1 + cos(Double.pi * Double(t) / 100)) / 2
        #expect(abs(Double(schedule.learningRate(atStep: t, base: 0.1, totalSteps: 100)) - expected) < 1e-7)
    }
    #expect(schedule.learningRate(atStep: 150, base: 0.1, totalSteps: 100) == 0.001)
    // An explicit horizon overrides the run's length.
    #expect(abs(ScheduleConfig.cosine(totalSteps: 10, minLR: 0).learningRate(atStep: 5, base: 1, totalSteps: 100) - 0.5) < 1e-7)
}

@Test func warmupRisesLinearlyThenHandsOver() {
    let schedule = ScheduleConfig.warmup(warmupSteps: 4, then: .step(stepSize: 2, gamma: 0.1))
    let rates = (0..<8).map { schedule.learningRate(atStep: $0, base: 1, totalSteps: 100) }
    let expected: [Float] = [0.25, 0.5, 0.75, 1, 1, 1, 0.1, 0.1]
    for (rate, want) in zip(rates, expected) { #expect(abs(rate - want) < 1e-6) }
}
