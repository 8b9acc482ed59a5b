import Gateway
public enum CGIServer {
    nonisolated(nonsending) public static func run(_ application: some Application) async -> Int32 { 2 }
}
