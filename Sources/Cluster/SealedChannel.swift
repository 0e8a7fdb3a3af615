import Crypto
import Foundation
import WireProtocol

/// One sealed session between a coordinator and a peer: two AES-256-GCM keys (one per
/// direction) that the coordinator drew at random and sent over the CURVE-encrypted control
/// connection, and a message counter per direction.
///
/// A sealed message is a plain header frame — `CHSL`, the message counter (u64), the frame count
/// (u32) — and each of the app message's frames sealed as it is (no copy into one buffer), as
/// AES-GCM's combined form: nonce, ciphertext, tag. Frame i's nonce is the counter and i; its
/// additional data is the header and i — so frames cannot be dropped, reordered or moved
/// between messages, and a message cannot be replayed (the receiver takes only counters above
/// the last it accepted). Nonces never repeat under a key: the counter only grows, and every
/// session has fresh keys.
package final class SealedSession {
    let sendKey: SymmetricKey
    let receiveKey: SymmetricKey
    private var sent: UInt64 = 0
    private var received: UInt64 = 0

    /// Header: magic, counter, frame count.
    static let magic: [UInt8] = Array("CHSL".utf8)
    static let headerBytes = 16
    /// A sealed frame's bytes beyond its plaintext: nonce and tag.
    static let overhead = 12 + 16

    package init(sendKey: [UInt8], receiveKey: [UInt8]) {
        self.sendKey = SymmetricKey(data: sendKey)
        self.receiveKey = SymmetricKey(data: receiveKey)
    }

    /// The sealed frames of one message.
    package func seal(_ frames: [Frame]) throws -> [Frame] {
        sent += 1
        var writer = ByteWriter(capacity: Self.headerBytes)
        writer.bytes = Self.magic
        writer.write(sent)
        writer.write(UInt32(frames.count))
        let header = writer.bytes
        var sealed = [Frame(bytes: header)]
        sealed.reserveCapacity(frames.count + 1)
        for (index, frame) in frames.enumerated() {
            let box = try AES.GCM.seal(frame.bytes, using: sendKey, nonce: try nonce(sent, index), authenticating: additionalData(header, index))
            sealed.append(Frame(buffer: PayloadBuffer(keeping: box.combined!)))
        }
        return sealed
    }

    /// Why a sealed message was refused.
    package enum Refusal: Error, CustomStringConvertible {
        case malformed(String), replayed(UInt64, last: UInt64), forged

        package var description: String {
            switch self {
            case .malformed(let what): return "not a sealed message (\(what))"
            case let .replayed(counter, last): return "a replay (message \(counter), already past \(last))"
            case .forged: return "failed authentication (changed in transit, or sealed under another key)"
            }
        }
    }

    /// The app frames of a sealed message; refuses anything changed, truncated or replayed.
    package func open(_ frames: [Frame]) throws(Refusal) -> [Frame] {
        guard let first = frames.first, first.count == Self.headerBytes,
              first.bytes.prefix(4).elementsEqual(Self.magic) else { throw .malformed("no CHSL header") }
        let header = first.byteArray
        var reader = ByteReader(first.bytes)
        reader.position = Self.magic.count
        let counter: UInt64, count: Int
        do {
            counter = try reader.read(UInt64.self, "counter")
            count = Int(try reader.read(UInt32.self, "frame count"))
        } catch {
            throw .malformed("\(error)")
        }
        guard count == frames.count - 1 else { throw .malformed("\(frames.count - 1) frames where the header says \(count)") }
        // At least one frame, whose tag covers the header: an empty message would set the
        // counter unauthenticated (and one far ahead would make every real message a "replay").
        guard count > 0 else { throw .malformed("no frames") }
        guard counter > received else { throw .replayed(counter, last: received) }
        var opened: [Frame] = []
        opened.reserveCapacity(count)
        for (index, frame) in frames.dropFirst().enumerated() {
            guard frame.count >= Self.overhead else { throw .malformed("frame \(index) of \(frame.count) bytes") }
            do {
                let expected = try nonce(counter, index)
                let box = try AES.GCM.SealedBox(combined: frame.bytes)
                guard box.nonce.withUnsafeBytes({ a in expected.withUnsafeBytes { b in a.elementsEqual(b) } }) else { throw Refusal.forged }
                opened.append(Frame(buffer: PayloadBuffer(keeping: try AES.GCM.open(box, using: receiveKey, authenticating: additionalData(header, index)))))
            } catch {
                throw .forged
            }
        }
        received = counter
        return opened
    }

    private func nonce(_ counter: UInt64, _ index: Int) throws -> AES.GCM.Nonce {
        var writer = ByteWriter(capacity: 12)
        writer.write(counter)
        writer.write(UInt32(index))
        return try AES.GCM.Nonce(data: writer.bytes)
    }

    private func additionalData(_ header: [UInt8], _ index: Int) -> [UInt8] {
        var writer = ByteWriter(capacity: header.count + 4)
        writer.bytes = header
        writer.write(UInt32(index))
        return writer.bytes
    }
}

extension PayloadBuffer {
    /// The bytes of `data` as a payload: big ones without a copy (kept alive by the buffer; a
    /// `Data` of that size lives in heap storage that does not move while nobody mutates it),
    /// small ones (which `Data` may hold inline) copied.
    convenience init(keeping data: Data) {
        guard data.count >= 4096 else {
            self.init(bytes: Array(data))
            return
        }
        let kept = data
        let start = kept.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
        self.init(adopting: start, byteCount: kept.count) { _ in withExtendedLifetime(kept) {} }
    }
}

/// The two control messages of the sealing handshake, sent over the CURVE connection. Neither
/// starts with the wire protocol's `CHRS`.
package enum SealHandshake {
    static let helloMagic: [UInt8] = Array("CHSH".utf8)
    static let replyMagic: [UInt8] = Array("CHSK".utf8)
    static let version: UInt8 = 1

    /// A peer's hello: magic, version, a 16-byte nonce its reply must echo.
    package static func hello(nonce: [UInt8]) -> [Frame] { [Frame(bytes: helloMagic + [version] + nonce)] }

    package static func helloNonce(_ frames: [Frame]) -> [UInt8]? {
        guard frames.count == 1, frames[0].count == 21 else { return nil }
        let bytes = frames[0].byteArray
        guard bytes.prefix(4).elementsEqual(helloMagic), bytes[4] == version else { return nil }
        return Array(bytes[5...])
    }

    /// What the coordinator answers: the hello's nonce, then either "no bulk channel" or the
    /// session's token (the bulk socket's routing id), both keys and the bulk endpoint.
    package struct Reply {
        var nonce: [UInt8]
        var bulk: (token: [UInt8], peerToCoordinator: [UInt8], coordinatorToPeer: [UInt8], endpoint: String)?

        package var frames: [Frame] {
            var bytes = replyMagic + [version] + nonce
            if let bulk {
                bytes += [1] + bulk.token + bulk.peerToCoordinator + bulk.coordinatorToPeer + Array(bulk.endpoint.utf8)
            } else {
                bytes += [0]
            }
            return [Frame(bytes: bytes)]
        }

        package init(nonce: [UInt8], bulk: (token: [UInt8], peerToCoordinator: [UInt8], coordinatorToPeer: [UInt8], endpoint: String)?) {
            self.nonce = nonce
            self.bulk = bulk
        }

        package init?(_ frames: [Frame]) {
            guard frames.count == 1, frames[0].count >= 22 else { return nil }
            let bytes = frames[0].byteArray
            guard bytes.prefix(4).elementsEqual(replyMagic), bytes[4] == version else { return nil }
            nonce = Array(bytes[5..<21])
            switch bytes[21] {
            case 0: bulk = nil
            case 1:
                guard bytes.count > 22 + 16 + 64 else { return nil }
                bulk = (Array(bytes[22..<38]), Array(bytes[38..<70]), Array(bytes[70..<102]), String(decoding: bytes[102...], as: UTF8.self))
            default: return nil
            }
        }
    }

    /// A fresh AES-256 key from the system's CSPRNG.
    static func newKey() -> [UInt8] { SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) } }

    /// A session token: 16 random bytes, the first not zero (a routing id may not start with one).
    static func newToken() -> [UInt8] {
        var bytes = SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }
        if bytes[0] == 0 { bytes[0] = 1 }
        return bytes
    }
}
