import Foundation
import ProcessTestSupport
import Testing
@testable import Checkpoint

/// Runs `arguments` (first: the program, looked up on PATH), returning the status and output.
private func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let run = try ChildProcess.run("/usr/bin/env", arguments, timeout: 120)
    return (run.end.status, run.output, run.error)
}

/// Whether `python3` can import `safetensors` and `numpy`.
private let pythonHasSafetensors: Bool = (try? run(["python3", "-c", "import safetensors, numpy"]).status) == 0

/// In CI the reference package must be installed (`pip install safetensors numpy`); elsewhere the tests are skipped.
private let runInterop = pythonHasSafetensors || ProcessInfo.processInfo.environment["CI"] == "true"

/// scripts/check_safetensors.py, found from this source file's real location.
private func checkScript() -> String {
    var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
    while url.path != "/" {
        let candidate = url.appendingPathComponent("scripts/check_safetensors.py")
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate.path }
        url.deleteLastPathComponent()
    }
    return "scripts/check_safetensors.py"
}

@Test(.enabled(if: runInterop, "python3 with safetensors and numpy is not installed (pip install safetensors numpy)"))
func pythonSafetensorsLoadsOurFiles() throws {
    try #require(pythonHasSafetensors, "CI=true but python3 cannot import safetensors and numpy: run pip install safetensors numpy")
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("checkpoint-3.safetensors").path
    try SafetensorsWriter.write([
        StoredTensor(name: "layers.0.weight", shape: [3, 2], values: (0..<6).map(Float.init)),
        StoredTensor(name: "layers.0.bias", shape: [3], values: [Float](repeating: 0.5, count: 3)),
        StoredTensor(name: "mask", shape: [3], values: [UInt8(1), 0, 1]),
        StoredTensor(name: "step", shape: [], values: [Int64(3)]),
    ], metadata: ["format": "chorus"], to: path)
    let result = try run(["python3", checkScript(), path, "--expect", "layers.0.weight:3,2", "--expect", "step:"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.split(separator: "\n").map(String.init) == [
        "layers.0.weight float32 3,2", "layers.0.bias float32 3", "mask uint8 3", "step int64 ", "metadata format=chorus",
    ])
}

@Test(.enabled(if: runInterop, "python3 with safetensors and numpy is not installed (pip install safetensors numpy)"))
func checkScriptFailsWhenAnExpectedTensorIsMissingOrMisshaped() throws {
    try #require(pythonHasSafetensors, "CI=true but python3 cannot import safetensors and numpy: run pip install safetensors numpy")
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("x.safetensors").path
    try SafetensorsWriter.write(tensors: [NamedTensor(name: "w", shape: [2, 2], values: [1, 2, 3, 4])], to: path)
    #expect(try run(["python3", checkScript(), path, "--expect", "w:4"]).status == 1)
    #expect(try run(["python3", checkScript(), path, "--expect", "v:2,2"]).status == 1)
}

@Test(.enabled(if: runInterop, "python3 with safetensors and numpy is not installed (pip install safetensors numpy)"))
func weReadFilesWrittenByPythonSafetensors() throws {
    try #require(pythonHasSafetensors, "CI=true but python3 cannot import safetensors and numpy: run pip install safetensors numpy")
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("from-python.safetensors").path
    let script = """
    import sys, numpy as np
    from safetensors.numpy import save_file
    save_file({"layers.1.weight": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
               "counts": np.array([7, -1], dtype=np.int64),
               "half": np.array([1.5], dtype=np.float16)}, sys.argv[1], metadata={"by": "python"})
    """
    let result = try run(["python3", "-c", script, path])
    try #require(result.status == 0, "\(result.stderr)")
    let file = try SafetensorsReader.read(path: path)
    #expect(file.metadata == ["by": "python"])
    #expect(try file.floatTensor(named: "layers.1.weight") == NamedTensor(name: "layers.1.weight", shape: [2, 3], values: [0, 0.25, 0.5, 0.75, 1, 1.25]))
    #expect(try file.tensor(named: "counts").values(as: Int64.self) == [7, -1])
    #expect(try file.tensor(named: "half").dtype == .f16)
}
