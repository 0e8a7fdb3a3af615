import Foundation
import ProcessTestSupport
import Testing

/// `"format": "npy"` and `"npz"` with files NumPy itself wrote (scripts/write_numpy_data.py): the
/// same params_sha256 as the same data given as CSV, and broken files refused naming the file.
@Suite(.serialized)
struct NumpyDataTests {
    static let hasNumPy = (try? ChildProcess.run("/usr/bin/env", ["python3", "-c", "import numpy"], timeout: 60).end.status) == 0

    /// The data set, written once.
    static let directory: String? = {
        guard hasNumPy else { return nil }
        let directory = Chorus.temporaryDirectory("numpy-data")
        let script = Chorus.repositoryRoot + "/scripts/write_numpy_data.py"
        let run = try? ChildProcess.run("/usr/bin/env", ["python3", script, directory], timeout: 120)
        return run?.end.status == 0 ? directory : nil
    }()

    func config(_ data: String) -> String {
        """
        {"model": {"input": [6], "layers": [{"type": "dense", "units": 8, "activation": "relu"}, {"type": "dense", "units": 3}]},
         "data": \(data), "training": {"epochs": 2, "batch_size": 16, "shards": 2}}
        """
    }

    /// Trains on `data` (a config's data object); the status, params_sha256 and stderr.
    func train(_ data: String, workers: Int = 0) throws -> (status: Int32, hash: String?, error: String) {
        let directory = try #require(Self.directory)
        let path = directory + "/config-\(UUID().uuidString.prefix(8)).json"
        try config(data).write(toFile: path, atomically: true, encoding: .utf8)
        let out = Chorus.temporaryDirectory("numpy-run")
        let run = try Chorus.run(["train", "--config", path, "--out", out, "--quiet", "--workers", String(workers)])
        return (run.status, (try? Chorus.report(out))?["params_sha256"] as? String, run.error)
    }

    func npy(_ x: String = "x_train.npy", _ y: String = "y_train.npy", testX: String = "x_test.npy") -> String {
        let d = Self.directory ?? ""
        return "{\"format\": \"npy\", \"train_features\": \"\(d)/\(x)\", \"train_labels\": \"\(d)/\(y)\", "
            + "\"test_features\": \"\(d)/\(testX)\", \"test_labels\": \"\(d)/y_test.npy\"}"
    }

    @Test(.enabled(if: hasNumPy || Chorus.isCI, "python3 with numpy is not installed"))
    func numpyFilesTrainToTheSameBitsAsTheSameDataAsCSV() throws {
        try #require(Self.directory != nil, "python3 with numpy could not write the test data")
        let d = Self.directory!
        let csv = try train("{\"format\": \"csv\", \"train\": \"\(d)/train.csv\", \"test\": \"\(d)/test.csv\"}")
        #expect(csv.status == 0, "\(csv.error)")
        let reference = try #require(csv.hash)
        for (what, data) in [
            ("npy float32 / int64", npy()),
            ("npy float64 features", npy("x_train64.npy")),
            ("npy big-endian float32", npy("x_train_big_endian.npy")),
            ("npz (np.savez)", "{\"format\": \"npz\", \"path\": \"\(d)/data.npz\"}"),
            ("npz compressed, uint8 and int32 labels", "{\"format\": \"npz\", \"path\": \"\(d)/compressed.npz\"}"),
        ] {
            let run = try train(data)
            #expect(run.status == 0 && run.hash == reference, "\(what): \(run.hash ?? "no hash") vs CSV \(reference): \(run.error)")
        }
        let distributed = try train(npy(), workers: 2)
        #expect(distributed.hash == reference, "npy with 2 workers: \(distributed.error)")
        let bytes = try train(npy("x_train_u8.npy", testX: "x_test_u8.npy"))
        #expect(bytes.status == 0, "uint8 features: \(bytes.error)")
    }

    @Test(.enabled(if: hasNumPy || Chorus.isCI, "python3 with numpy is not installed"))
    func brokenNumpyFilesAreRefusedNamingTheFileAndTheProblem() throws {
        try #require(Self.directory != nil, "python3 with numpy could not write the test data")
        let d = Self.directory!
        for (data, expected) in [
            (npy("truncated.npy"), "truncated.npy: file is truncated"),
            (npy("fortran.npy"), "fortran_order is True"),
            (npy("complex.npy"), "dtype '<c8' is not supported"),
            (npy("x_train.npy", "y_train_short.npy"), "holds 96 images but"),
            (npy("missing.npy"), "missing.npy: file not found"),
            (npy("train.csv"), "train.csv: not a .npy array"),
            ("{\"format\": \"npz\", \"path\": \"\(d)/truncated.npz\"}", "truncated.npz"),
            ("{\"format\": \"npz\", \"path\": \"\(d)/data.npz\", \"train_features\": \"images\"}", "no array images in the archive (it holds x_test, x_train, y_test, y_train)"),
        ] {
            let run = try train(data)
            #expect(run.status == 1, "\(data): \(run.status) \(run.error)")
            #expect(run.error.contains(expected), "\(data): \(run.error)")
        }
    }
}
