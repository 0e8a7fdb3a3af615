import ArgumentParser

/// `chorus`: data-parallel training you can trust.
struct Chorus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "Distributed data-parallel neural-network training over ZeroMQ, bit-reproducible, with a collapse monitor.",
        version: "0.1.0",
        subcommands: [Train.self, Coordinator.self, Worker.self, Stress.self, StressWorkerCommand.self, StressAgentCommand.self, Eval.self, Keygen.self]
    )
}
