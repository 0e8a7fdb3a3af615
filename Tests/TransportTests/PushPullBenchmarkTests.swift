import Testing
import Transport

@Suite struct PushPullBenchmarkTests {
    @Test func measuresAPositiveThroughputOverTCPAndIPC() throws {
        let tcp = try measurePushPull(endpoint: "tcp://127.0.0.1:*", messageBytes: 1 << 20, count: 50)
        let ipc = try measurePushPull(endpoint: TransportTestSupport.ipcEndpoint(), messageBytes: 1 << 20, count: 50)
        #expect(tcp > 0.01 && tcp.isFinite)
        #expect(ipc > 0.01 && ipc.isFinite)
    }
}
