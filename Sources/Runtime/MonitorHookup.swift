/// Connects the collapse monitor to a trainer and its executor.
public enum MonitorHookup {
    /// Attaches signal collection, diagnosis and the policy to `trainer`.
    public static func attach(to trainer: Trainer, executor: StepExecutor) {}
}

extension MonitorHookup {
    /// Attaches signal collection to a worker.
    public static func attach(worker: WorkerRunner) {}
}
