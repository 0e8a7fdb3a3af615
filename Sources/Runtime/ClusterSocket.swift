#if canImport(Glibc)
import Glibc
#endif
import Transport
import WireProtocol

/// The socket set-up every coordinator and worker of Chorus shares: no linger, ZMTP
/// heartbeats, unbounded queues (back-pressure comes from the protocol's reorder window), and
/// optional CURVE encryption.
enum ClusterSocket {
    /// A coordinator's ROUTER bound to `endpoint`.
    static func router(context: ZMQContext, endpoint: String, heartbeatMs: Int, timeoutMs: Int, curve: CurveKeys? = nil) throws -> ZMQMessageTransport {
        var options: [SocketOption] = [
            .linger(0), .heartbeatInterval(Int32(heartbeatMs)), .heartbeatTimeout(Int32(timeoutMs)), .sendHWM(0), .receiveHWM(0),
        ]
        if let curve { options += [.curveServer(true), .curveSecretKey(curve.secretKey)] }
        return try ZMQMessageTransport.router(context: context, bind: endpoint, options: options)
    }

    /// A worker's DEALER connected to `endpoint` with routing id `<prefix><pid>-<random>`;
    /// with the coordinator's CURVE public key, encrypted under a fresh key pair of its own.
    static func dealer(context: ZMQContext, endpoint: String, identityPrefix: String, heartbeatMs: Int, timeoutMs: Int,
                       curveServerKey: String? = nil) throws -> ZMQMessageTransport {
        var options: [SocketOption] = [
            .linger(0), .routingID(PeerID("\(identityPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))")),
            .heartbeatInterval(Int32(heartbeatMs)), .heartbeatTimeout(Int32(timeoutMs)), .sendHWM(0), .receiveHWM(0),
        ]
        if let curveServerKey {
            let mine = try CurveKeys.generate()
            options += [.curveServerKey(curveServerKey), .curvePublicKey(mine.publicKey), .curveSecretKey(mine.secretKey)]
        }
        return try ZMQMessageTransport.dealer(context: context, connect: endpoint, options: options)
    }
}
