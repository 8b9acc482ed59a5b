import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The README's example is a real target (`readme-example`) that CI compiles; this keeps
/// the README's copy of it identical, so the example users paste is one that builds.
@Suite struct ReadmeExampleTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func readmeShowsTheCompiledExampleVerbatim() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let example = try String(
            contentsOf: Self.root.appendingPathComponent("Sources/readme-example/main.swift"),
            encoding: .utf8
        )
        #expect(readme.contains("```swift\n" + example + "```"))
        #expect(example.split(separator: "\n").count < 70, "the README promises a whole app in under 70 lines")
    }
}
