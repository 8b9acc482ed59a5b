// swift-tools-version:6.2
import PackageDescription

/// swift-gateway: one small interface between web servers and Swift web applications
/// (the Swift counterpart of Python's WSGI), run behind nginx or Apache over FastCGI or CGI.
let package = Package(
    name: "swift-gateway",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SwiftGateway", targets: ["SwiftGateway"]),
        .library(name: "Gateway", targets: ["Gateway"]),
        .library(name: "FastCGI", targets: ["FastCGI"]),
        .library(name: "FastCGIServer", targets: ["FastCGIServer"]),
        .library(name: "CGI", targets: ["CGI"]),
        .library(name: "GatewayTesting", targets: ["GatewayTesting"]),
        .library(name: "GatewayHTTPServer", targets: ["GatewayHTTPServer"]),
        .library(name: "GatewayObservability", targets: ["GatewayObservability"]),
        .executable(name: "hello", targets: ["hello"]),
        .executable(name: "gateway-probe", targets: ["gateway-probe"]),
        .executable(name: "fcgi-load", targets: ["fcgi-load"]),
        .executable(name: "authorizer-example", targets: ["authorizer-example"]),
        // Framework bridges: each its own product, empty unless its trait is on.
        .library(name: "GatewayHummingbird", targets: ["GatewayHummingbird"]),
        .library(name: "GatewayOpenAPI", targets: ["GatewayOpenAPI"]),
        .library(name: "GatewayVapor", targets: ["GatewayVapor"]),
        .executable(name: "hummingbird-example", targets: ["hummingbird-example"]),
        .executable(name: "openapi-example", targets: ["openapi-example"]),
        .executable(name: "vapor-example", targets: ["vapor-example"]),
    ],
    // Off by default: an app that does not turn a bridge's trait on neither builds nor links
    // its framework. `swift build --traits Hummingbird,OpenAPI,Vapor` builds them all.
    traits: [
        .trait(name: "Hummingbird", description: "GatewayHummingbird: serve a Hummingbird 2 router."),
        .trait(name: "OpenAPI", description: "GatewayOpenAPI: a swift-openapi-runtime ServerTransport."),
        .trait(name: "Vapor", description: "GatewayVapor: serve a Vapor 4 Application's routes."),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // `swift package generate-documentation` (scripts/docs): the DocC catalogs, warnings as errors.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // The bridges' frameworks, built only with their trait on (see the targets' conditions).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
    ],
    targets: [
        // Layer 1: the interface itself. No I/O.
        .target(
            name: "Gateway",
            dependencies: [
                .product(name: "HTTPTypes", package: "swift-http-types"),
                // environ.logger: a Logger per request.
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Layer 2: the FastCGI wire protocol. Pure: no sockets, no event loops.
        .target(
            name: "FastCGI",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Layer 3: runs an Application for FastCGI connections on SwiftNIO.
        .target(
            name: "FastCGIServer",
            dependencies: [
                "Gateway", "FastCGI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Layer 3': runs an Application once as a CGI/1.1 process. Stdlib only, for start-up speed.
        .target(name: "CGI", dependencies: ["Gateway"]),
        // Layer 4: the entry point that picks FastCGI or CGI like libfcgi's FCGX_IsCGI.
        .target(
            name: "SwiftGateway",
            dependencies: [
                "Gateway", "CGI", "FastCGIServer", "GatewayHTTPServer",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // The status page's figures as metrics (only the API: an app bootstraps a backend).
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // A local HTTP/1.1 server for development: the environ filled as nginx's fastcgi_params would.
        .target(
            name: "GatewayHTTPServer",
            dependencies: [
                "Gateway",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Optional middleware: metrics (swift-metrics) and tracing (swift-distributed-tracing).
        .target(
            name: "GatewayObservability",
            dependencies: [
                "Gateway",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The public testing API: `app.test(.inProcess) { client in … }` over four transports.
        .target(
            name: "GatewayTesting",
            dependencies: [
                "Gateway", "GatewayTestHarness",
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // This repository's own test harness (web-server launchers, processes, ports, the probe,
        // raw FastCGI clients). No product lists it: apps never import it.
        .target(
            name: "GatewayTestHarness",
            dependencies: [
                "Gateway", "FastCGI", "FastCGIServer", "CGI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The app the public testing API's tests run over every transport (also as a CGI process).
        .executableTarget(name: "testing-example", dependencies: ["SwiftGateway"]),
        .executableTarget(name: "hello", dependencies: ["SwiftGateway"]),
        .executableTarget(name: "gateway-probe", dependencies: ["SwiftGateway"]),
        // A FastCGI Authorizer for Apache mod_authnz_fcgi (apache/authorizer.conf).
        .executableTarget(name: "authorizer-example", dependencies: ["SwiftGateway"]),
        // The README's example, compiled so that it stays true (a test compares the two).
        .executableTarget(
            name: "readme-example",
            dependencies: [
                "SwiftGateway",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "fcgi-load",
            dependencies: [
                "FastCGI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "DecoderBenchmark",
            dependencies: ["FastCGI", .product(name: "NIOCore", package: "swift-nio")],
            path: "Benchmarks/DecoderBenchmark"
        ),
        // libFuzzer target for the FastCGI decoders (scripts/fuzz); a corpus replayer in normal builds.
        .executableTarget(
            name: "FastCGIFuzzer",
            dependencies: ["FastCGI", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/FastCGIFuzzer",
            exclude: ["Corpus"]
        ),
        // Bridges: the framework is a dependency only with the trait on, and every source is
        // inside `#if <Trait>`, so without it the module is empty.
        // What every bridge needs from an Environ (the mounted request head); no framework.
        .target(
            name: "GatewayBridging",
            dependencies: ["Gateway", .product(name: "HTTPTypes", package: "swift-http-types")]
        ),
        .target(
            name: "GatewayHummingbird",
            dependencies: [
                "SwiftGateway", "GatewayBridging",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
            ]
        ),
        .target(
            name: "GatewayOpenAPI",
            dependencies: [
                "SwiftGateway", "GatewayBridging",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime", condition: .when(traits: ["OpenAPI"])),
            ]
        ),
        .target(
            name: "GatewayVapor",
            dependencies: [
                "SwiftGateway", "GatewayBridging",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Vapor", package: "vapor", condition: .when(traits: ["Vapor"])),
            ]
        ),
        // The same four routes on each framework; without its trait, a stub that says so.
        .executableTarget(
            name: "hummingbird-example",
            dependencies: [
                "GatewayHummingbird", "SwiftGateway",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
            ]
        ),
        .executableTarget(
            name: "openapi-example",
            dependencies: [
                "GatewayOpenAPI", "SwiftGateway",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime", condition: .when(traits: ["OpenAPI"])),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .executableTarget(
            name: "vapor-example",
            dependencies: [
                "GatewayVapor", "SwiftGateway",
                .product(name: "Vapor", package: "vapor", condition: .when(traits: ["Vapor"])),
            ]
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "GatewayTesting", "GatewayTestHarness", .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The public testing API, used as an app's tests use it: no harness.
        .testTarget(
            name: "GatewayTestingTests",
            dependencies: ["GatewayTesting", "SwiftGateway", "testing-example"]
        ),
        .testTarget(
            name: "FastCGITests",
            dependencies: ["FastCGI", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "CGITests",
            dependencies: ["CGI", "Gateway", "GatewayTestHarness", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "FastCGIServerTests",
            dependencies: ["FastCGIServer", "FastCGI", "Gateway", "GatewayTestHarness"]
        ),
        .testTarget(name: "EndToEndTests", dependencies: ["Gateway", "GatewayTestHarness"]),
        .testTarget(
            name: "GatewayHTTPServerTests",
            dependencies: [
                "GatewayHTTPServer", "Gateway", "GatewayTestHarness",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "GatewayObservabilityTests",
            dependencies: [
                "GatewayObservability", "Gateway",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
                // The bridges in process (routing, mount points, parameters, bodies, errors); each
        // file is empty without its trait.
        .testTarget(
            name: "GatewayBridgeTests",
            dependencies: [
                "Gateway", "GatewayTestHarness", "GatewayHummingbird", "GatewayOpenAPI", "GatewayVapor",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime", condition: .when(traits: ["OpenAPI"])),
                .product(name: "Vapor", package: "vapor", condition: .when(traits: ["Vapor"])),
            ]
        ),
        // The composable server through SwiftGateway's public API: options, GatewayServer in
        // an app's own ServiceGroup, per-request logging, the built executables' exit statuses.
        .testTarget(
            name: "SwiftGatewayTests",
            dependencies: [
                "SwiftGateway", "GatewayTestHarness", "FastCGI", "FastCGIServer",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ]
)
