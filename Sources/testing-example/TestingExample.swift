import SwiftGateway

/// Serves ``ExampleApplication`` as CGI or FastCGI, as `serve()` decides: the executable the
/// `.cgi` transport runs.
@main
struct TestingExample {
    static func main() async {
        await serve(ExampleApplication())
    }
}
