import Foundation
import Testing

extension Chorus {
    /// Whether the tests run in CI (`CI=true`, as GitHub Actions and most CI services set it).
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
}

/// Gates a suite or test on the Fashion-MNIST files (package dataset-fashion-mnist).
///
/// On a developer's machine without them the tests are skipped. In CI they are not: each runs
/// and fails at once with what to install, so a CI image that lost the package cannot pass
/// by skipping the end-to-end tests.
struct FashionMNISTGate: SuiteTrait, TestTrait, TestScoping {
    static let missing: Comment = "dataset-fashion-mnist is not installed; CI must install it (scripts/setup.sh)"

    var isRecursive: Bool { true }

    func prepare(for test: Test) async throws {
        try await ConditionTrait.enabled(if: Chorus.hasFashionMNIST || Chorus.isCI, "needs dataset-fashion-mnist").prepare(for: test)
    }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard test.isSuite || Chorus.hasFashionMNIST else {
            Issue.record(Self.missing)
            return
        }
        try await function()
    }
}

extension Trait where Self == FashionMNISTGate {
    /// Skipped without the Fashion-MNIST files, except in CI, where their absence fails the test.
    static var needsFashionMNIST: Self { Self() }
}
