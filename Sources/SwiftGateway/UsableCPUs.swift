import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How many CPUs this process may actually run on.
///
/// SwiftNIO's `System.coreCount` honours cgroup quotas and cpusets but not the scheduler
/// affinity mask that `taskset`, `numactl` or systemd's `CPUAffinity=` set. An event-loop
/// thread per machine core on a process pinned to fewer cores only adds context switches and
/// cross-thread wake-ups (a connection accepted on one thread and served on another), so the
/// server sizes its event-loop group from the smaller of the two.
enum UsableCPUs {
    static var count: Int {
        let cores = max(1, System.coreCount)
        guard let allowed = affinityCount() else { return cores }
        return min(cores, allowed)
    }

    /// The CPUs in this process's affinity mask, from the `Cpus_allowed` line of
    /// /proc/self/status (a comma-separated hex mask); nil where there is no such file.
    private static func affinityCount() -> Int? {
        guard let status = readStatus() else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed:") {
            let mask = line.dropFirst("Cpus_allowed:".count)
            var count = 0
            for character in mask where character != "," && character != " " && character != "\t" {
                guard let nibble = character.hexDigitValue else { return nil }
                count += nibble.nonzeroBitCount
            }
            return count > 0 ? count : nil
        }
        return nil
    }

    private static func readStatus() -> String? {
        #if os(Linux)
        guard let file = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: 16 * 1024)
        let count = fread(&bytes, 1, bytes.count, file)
        return String(decoding: bytes[..<count], as: UTF8.self)
        #else
        return nil
        #endif
    }
}
