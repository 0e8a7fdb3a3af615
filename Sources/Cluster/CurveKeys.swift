import Foundation
import Transport

/// A CURVE key pair in Z85 text, as `chorus keygen` writes it:
/// `public: <40 chars>` and `secret: <40 chars>` lines.
public struct CurveKeys: Equatable, Sendable {
    public var publicKey: String
    public var secretKey: String

    /// A fresh key pair from libzmq.
    public static func generate() throws -> CurveKeys {
        guard ZMQ.hasCurve else { throw RuntimeError.invalidSetting("this libzmq was built without CURVE") }
        let pair = try ZMQ.curveKeypair()
        return CurveKeys(publicKey: pair.public, secretKey: pair.secret)
    }

    /// The file's text.
    public var text: String { "public: \(publicKey)\nsecret: \(secretKey)\n" }

    /// Reads a key file; errors name the file and what is missing.
    public static func load(path: String) throws -> CurveKeys {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw RuntimeError.invalidSetting("\(path): cannot read the CURVE key file")
        }
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & 0o077 != 0 {
            throw RuntimeError.invalidSetting("\(path): the secret key is readable by others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 \(path)")
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        guard let publicKey = values["public"], publicKey.count == 40 else {
            throw RuntimeError.invalidSetting("\(path): no 40-character \"public:\" key (make one with chorus keygen --out FILE)")
        }
        guard let secretKey = values["secret"], secretKey.count == 40 else {
            throw RuntimeError.invalidSetting("\(path): no 40-character \"secret:\" key")
        }
        return CurveKeys(publicKey: publicKey, secretKey: secretKey)
    }

    /// A server public key given directly (40 Z85 characters) or as a key file.
    public static func serverKey(_ value: String) throws -> String {
        if value.count == 40 && !FileManager.default.fileExists(atPath: value) { return value }
        return try load(path: value).publicKey
    }
}
