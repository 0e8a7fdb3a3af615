// swift-tools-version:6.0
import PackageDescription

/// Release builds of the numeric modules skip overflow and exclusivity checks in hot loops.
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "chorus", targets: ["chorus"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        // --metrics-port: the Prometheus registry and text format, and a small HTTP server for it.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        // System-library shims: a module map and one header each, nothing else.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Hardware CRC32C (SSE4.2) with a portable fallback.
        .target(name: "CChecksum", cSettings: [.unsafeFlags(["-O3"])]),
        // Optimizer inner loops, vectorized per CPU at load time; no FP contraction (same bits).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off", "-fno-math-errno"])]),

        .target(name: "TensorCore", dependencies: ["CBLAS"], swiftSettings: fastMath),
        .target(name: "NeuralNet", dependencies: ["TensorCore", "Config"], swiftSettings: fastMath),
        .target(name: "Optimizers", dependencies: ["Config", "CKernels"], swiftSettings: fastMath),
        .target(name: "Data", dependencies: ["CZlib", "TensorCore", "CChecksum"], swiftSettings: fastMath),
        .target(name: "Config"),
        .target(name: "Checkpoint", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "WireProtocol", dependencies: ["CChecksum"], swiftSettings: fastMath),
        .target(name: "Transport", dependencies: ["CZeroMQ", "WireProtocol"]),
        .target(name: "Coordination"),
        .target(name: "CollapseMonitor"),
        // Processes and sockets around the state machines, for any workload: the coordinator and
        // worker hosts, child processes, shared memory, CURVE keys, faults.
        .target(
            name: "Cluster",
            dependencies: ["Coordination", "Transport", "WireProtocol", "CKernels", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: fastMath
        ),
        // What the collapse monitor measures from a model (activations, probes, step signals).
        .target(name: "Signals", dependencies: ["CollapseMonitor", "NeuralNet", "TensorCore", "Config", "Data", "CKernels"], swiftSettings: fastMath),
        // `chorus stress`: generated gradients aggregated by the cluster core and checked exactly.
        .target(
            name: "Stress",
            dependencies: ["Cluster", "Config", "Coordination", "Transport", "WireProtocol", "TensorCore",
                           .product(name: "Histogram", package: "hdrhistogram-swift")],
            swiftSettings: fastMath
        ),
        // Training: the session, executors, the training workloads, run output, checkpoints, the monitor hook-up.
        .target(
            name: "Training",
            dependencies: [
                "TensorCore", "NeuralNet", "Optimizers", "Data", "Config", "Checkpoint",
                "WireProtocol", "Transport", "Coordination", "CollapseMonitor", "CKernels", "Cluster", "Signals", "CChecksum",
                .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "FlyingFox", package: "FlyingFox"),
                .product(name: "FlyingSocks", package: "FlyingFox"),
            ],
            swiftSettings: fastMath
        ),
        .executableTarget(
            name: "chorus",
            dependencies: ["Training", "Stress", "Cluster", "TensorCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // benchmarks/sum-accuracy: the shard tree's sum against a left fold and float64 (docs/benchmarks.md).
        .executableTarget(name: "chorus-sum-accuracy", dependencies: ["Training", "Coordination", "NeuralNet", "TensorCore", "Config"],
                          path: "benchmarks/sum-accuracy"),

        // fuzz/: replays the fuzzing corpora; fuzz/run.sh builds it as a libFuzzer binary.
        .executableTarget(name: "chorus-fuzz", dependencies: ["WireProtocol", "Config", "Checkpoint", "Data", "CollapseMonitor", "Cluster"],
                          path: "fuzz/Sources"),

        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "Optimizers", "TensorCore", "Config"]),
        .testTarget(name: "DataTests", dependencies: ["Data", "TensorCore"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "TensorCore"]),
        // Test helpers: running programs and waiting for them (Tests/ProcessTestSupport).
        .target(name: "ProcessTestSupport", path: "Tests/ProcessTestSupport"),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "ProcessTestSupport"]),
        .testTarget(name: "WireProtocolTests", dependencies: ["WireProtocol", "TensorCore"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "WireProtocol"]),
        .testTarget(name: "CoordinationTests", dependencies: ["Coordination", "WireProtocol", "TensorCore"]),
        .testTarget(name: "CollapseMonitorTests", dependencies: ["CollapseMonitor", "TensorCore"]),
        .testTarget(name: "EndToEndTests", dependencies: ["Training", "Stress", "Cluster", "Signals", "ProcessTestSupport"]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster", "Stress", "Training", "Coordination", "Transport", "WireProtocol"]),
    ],
    swiftLanguageModes: [.v5]
)
