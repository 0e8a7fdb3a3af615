import Foundation
import ProcessTestSupport
import Testing

/// Runs a shell command to completion, returning its status and output (stdout and stderr together).
@discardableResult
func shell(_ command: String, environment: [String: String] = [:], timeout: TimeInterval = 300) throws -> (status: Int32, output: String) {
    let run = try ChildProcess.run("/bin/bash", ["-c", command], environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                                   timeout: timeout, mergeOutput: true)
    return (run.end.status, run.output)
}

extension Chorus {
    /// In CI a missing tool is a failure (CI must install it), elsewhere a reason to skip.
    static func require(_ available: Bool, _ what: String) -> Bool {
        if !available && isCI { Issue.record("\(what) is missing; .ci/run must install it (scripts/setup.sh --cluster-tests)") }
        return available
    }
}

/// `cluster/ssh-launch.sh`: the coordinator here, workers started over ssh on the hosts of a
/// hostfile, each host a network-namespace test host running a real sshd (key-only login).
extension TestHostSuites {
@Suite(.needsFashionMNIST)
struct SSHLauncherTests {
    @Test func aHostfileRunStartsEveryWorkerOverSSHAndGivesTheInProcessBits() throws {
        guard Chorus.require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd"), "openssh-server") else { return }
        let run = ["--shards", "4", "--max-steps", "60", "--batch-size", "128", "--seed", "9", "--quiet"]
        let reference = Chorus.temporaryDirectory("ssh-ref")
        _ = try Chorus.run(["train", "--workers", "0", "--out", reference] + run)
        let directory = Chorus.temporaryDirectory("ssh")
        try shell("ssh-keygen -q -t ed25519 -N '' -f \(directory)/id")
        try "10.213.7.2 slots=1\n10.213.7.3 slots=2   # two workers on this host\n".write(toFile: directory + "/hostfile", atomically: true, encoding: .utf8)
        try TestHosts.with(3) {
            try TestHosts.control(["sshd", "1", directory + "/id.pub"])
            try TestHosts.control(["sshd", "2", directory + "/id.pub"])
            let ssh = "ssh -i \(directory)/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -l root"
            let launch = "ip netns exec chorus-h0 bash \(Chorus.repositoryRoot)/cluster/ssh-launch.sh --hostfile \(directory)/hostfile "
                + "--address 10.213.7.1 --chorus \(Chorus.binary) --ssh '\(ssh)' -- --out \(directory)/out " + run.joined(separator: " ")
            let result = try shell(launch)
            #expect(result.status == 0, "\(result.output)")
            let report = try Chorus.report(directory + "/out")
            #expect(report["params_sha256"] as? String == (try Chorus.report(reference)["params_sha256"] as? String))
            #expect(report["workers"] as? Int == 3)
            // Every worker ran on its host over ssh, and none is left behind.
            #expect(result.output.contains("[10.213.7.2]") && result.output.contains("[10.213.7.3]"), "\(result.output)")
            let left = try shell("for h in 1 2; do ip netns pids chorus-h$h | xargs -r ps -o comm= -p | grep -c chorus || true; done")
            #expect(!left.output.split(separator: "\n").contains { $0 != "0" }, "\(left.output)")
        }
    }

    @Test func ctrlCStopsTheCoordinatorAndEveryRemoteWorker() throws {
        guard Chorus.require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd"), "openssh-server") else { return }
        let directory = Chorus.temporaryDirectory("ssh-int")
        try shell("ssh-keygen -q -t ed25519 -N '' -f \(directory)/id")
        try "10.213.7.2 slots=2\n".write(toFile: directory + "/hostfile", atomically: true, encoding: .utf8)
        try TestHosts.with(2) {
            try TestHosts.control(["sshd", "1", directory + "/id.pub"])
            let ssh = "ssh -i \(directory)/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -l root"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", "chorus-h0", "bash", Chorus.repositoryRoot + "/cluster/ssh-launch.sh", "--hostfile", directory + "/hostfile",
                                 "--address", "10.213.7.1", "--chorus", Chorus.binary, "--ssh", ssh, "--",
                                 "--out", directory + "/out", "--epochs", "100", "--quiet"]
            FileManager.default.createFile(atPath: directory + "/launch.log", contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/launch.log"))
            process.standardOutput = log
            process.standardError = log
            try process.run()
            let started = Date()
            #expect(TestHosts.waitForSteps(directory + "/out", 20), "the run did not start")
            // Ctrl-C: a terminal sends SIGINT to its foreground job's process group — the
            // launcher's, which its coordinator and ssh clients share.
            let group = try shell("ps -o pgid= -p \(process.processIdentifier)").output.trimmingCharacters(in: .whitespacesAndNewlines)
            try #require(Int32(group) != nil && Int32(group) != getpgrp(), "the launcher needs a process group of its own (got \(group))")
            try shell("kill -INT -- -\(group)")
            _ = ChildProcess.wait(process, timeout: 60)
            usleep(2_000_000)
            let left = try shell("for h in 0 1; do ip netns pids chorus-h$h | xargs -r ps -o comm= -p | grep -c chorus || true; done")
            #expect(left.output.split(separator: "\n").allSatisfy { $0 == "0" }, "chorus processes left: \(left.output)")
            let text = (try? String(contentsOfFile: directory + "/launch.log", encoding: .utf8)) ?? ""
            #expect((try? Chorus.report(directory + "/out"))?["status"] as? String == "failed", "after \(Date().timeIntervalSince(started)) s: \(text.suffix(1500))")
        }
    }
}
}

/// `cluster/slurm/chorus.sbatch` on a real Slurm (slurmctld and two slurmd on this machine).
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to run Slurm's daemons"), .needsFashionMNIST)
struct SlurmTests {
    static let control = Chorus.repositoryRoot + "/cluster/slurm/testcluster.sh"
    static let environment = ["SLURM_CONF": "/run/chorus-slurm/slurm.conf", "CHORUS": Chorus.binary]

    func inProcessHash(_ run: [String]) throws -> String? {
        let out = Chorus.temporaryDirectory("slurm-ref")
        _ = try Chorus.run(["train", "--workers", "0", "--out", out] + run)
        return try Chorus.report(out)["params_sha256"] as? String
    }

    @Test func anSbatchRunGivesTheInProcessBitsAndSurvivesACoordinatorSIGKILL() throws {
        guard Chorus.require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/slurmctld"), "slurm-wlm") else { return }
        let up = try shell("bash \(Self.control) up")
        try #require(up.status == 0, "\(up.output)")
        defer { _ = try? shell("bash \(Self.control) down") }
        let short = ["--shards", "4", "--max-steps", "60", "--batch-size", "128", "--seed", "9", "--quiet"]
        let first = Chorus.temporaryDirectory("slurm-a")
        let plain = try shell("sbatch --wait --output=\(first)/job.log \(Chorus.repositoryRoot)/cluster/slurm/chorus.sbatch --out \(first)/out "
                              + short.joined(separator: " "), environment: Self.environment)
        #expect(plain.status == 0, "\(plain.output) \((try? String(contentsOfFile: first + "/job.log", encoding: .utf8)) ?? "")")
        #expect(try Chorus.report(first + "/out")["params_sha256"] as? String == inProcessHash(short))

        // The coordinator is SIGKILLed mid-run; the script restarts it from the checkpoint.
        let long = ["--shards", "4", "--max-steps", "600", "--batch-size", "128", "--seed", "9", "--quiet", "--checkpoint-every", "20"]
        let second = Chorus.temporaryDirectory("slurm-b")
        let submitted = try shell("sbatch --parsable --output=\(second)/job.log \(Chorus.repositoryRoot)/cluster/slurm/chorus.sbatch --out \(second)/out "
                                  + long.joined(separator: " "), environment: Self.environment)
        let job = submitted.output.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(submitted.status == 0 && !job.isEmpty, "\(submitted.output)")
        #expect(TestHosts.waitForSteps(second + "/out", 150), "the run did not reach step 150")
        try shell("pkill -9 -f 'chorus coordinator --bind tcp://0.0.0.0:29500'")
        let killedAt = TestHosts.stepsWritten(second + "/out")
        let ended = try shell("while squeue -h -j \(job) 2>/dev/null | grep -q .; do sleep 0.5; done", environment: Self.environment)
        #expect(ended.status == 0)
        let log = (try? String(contentsOfFile: second + "/job.log", encoding: .utf8)) ?? ""
        #expect(killedAt < 600)
        #expect(log.contains("restart 1 of 3"), "\(log)")
        let report = try Chorus.report(second + "/out")
        #expect(report["status"] as? String == "completed", "\(log)")
        #expect(report["params_sha256"] as? String == (try inProcessHash(Array(long.dropLast(2)))))
    }
}
