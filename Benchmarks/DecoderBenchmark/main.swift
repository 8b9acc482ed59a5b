// Measures the FastCGI request decoder on one core:
//  (a) 64 KiB STDIN records, in GB/s, beside a plain memcpy of the same bytes;
//  (b) a typical nginx request (BEGIN_REQUEST, the params nginx's fastcgi_params sends,
//      empty PARAMS, empty STDIN) decoded into NameValuePairs, in requests per second.
// Each measurement is repeated and the median printed.

import FastCGI
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall time and this thread's CPU time of one measurement. The CPU time is the figure for
/// "one core": it is not inflated when other processes share the machine.
struct Timing {
    var wall: Double
    var cpu: Double
}

/// Starts timing on creation.
struct Stopwatch {
    let wall = ContinuousClock.now
    let cpu = Stopwatch.threadCPUTime()

    static func threadCPUTime() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
    }

    func elapsed() -> Timing {
        let parts = (ContinuousClock.now - wall).components
        return Timing(
            wall: Double(parts.seconds) + Double(parts.attoseconds) * 1e-18,
            cpu: Stopwatch.threadCPUTime() - cpu
        )
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

func format(_ value: Double, _ decimals: Int = 2) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return "\(rounded)"
}

let arguments = CommandLine.arguments
let repeats = arguments.count > 1 ? Int(arguments[1]) ?? 7 : 7
let only = arguments.count > 2 ? arguments[2] : "ab"  // "a", "b" or both

// MARK: (a) 64 KiB STDIN records versus memcpy

func benchmarkStdin() {

    // The stream arrives as a server receives it: in separate read buffers (1 MiB each here, NIO's
    // reads are smaller), records straddling them. Slices of a ByteBuffer are only zero-copy while
    // their offset is below 16 MiB (a NIO limit), which channel reads always satisfy.
    let recordContent = 65535
    let recordCount = 4096  // 256 MiB of body
    let readSize = 1 << 20
    var stream = ByteBuffer()
    stream.reserveCapacity(recordCount * (recordContent + 9) + 64)
    RequestEncoder.writeBeginRequest(requestID: 1, keepConnection: true, into: &stream)
    RequestEncoder.writeParams([("REQUEST_METHOD", "POST")], requestID: 1, into: &stream)
    let chunk = [UInt8](repeating: 0x78, count: recordContent)
    for _ in 0..<recordCount {
        RequestEncoder.writeStdin(chunk, requestID: 1, into: &stream)
    }
    RequestEncoder.writeStdinEnd(requestID: 1, into: &stream)
    let streamBytes = stream.readableBytes
    let bodyBytes = recordContent * recordCount
    var reads: [ByteBuffer] = []
    while stream.readableBytes > 0 {
        var piece = ByteBufferAllocator().buffer(capacity: readSize)
        var slice = stream.readSlice(length: min(readSize, stream.readableBytes))!
        piece.writeBuffer(&slice)
        reads.append(piece)
    }
    stream = ByteBuffer()

    let destination = UnsafeMutableRawPointer.allocate(byteCount: streamBytes, alignment: 64)
    defer { destination.deallocate() }

    func runMemcpy() -> Timing {
        let start = Stopwatch()
        var offset = 0
        for read in reads {
            read.withUnsafeReadableBytes { source in
                _ = memcpy(destination + offset, source.baseAddress!, source.count)
                offset += source.count
            }
        }
        return start.elapsed()
    }

    func runStdinDecode() -> (Timing, Int) {
        var decoder = RequestDecoder()
        var received = 0
        let start = Stopwatch()
        do {
            for read in reads {
                var input = read  // shares storage; only indices move
                while let event = try decoder.next(from: &input) {
                    if case .stdin(_, let slice) = event { received &+= slice.readableBytes }
                }
            }
        } catch {
            fatalError("benchmark stream rejected: \(error)")
        }
        return (start.elapsed(), received)
    }

    _ = runMemcpy()  // fault in the destination pages
    var memcpyTimes: [Timing] = []
    var decodeTimes: [Timing] = []
    for _ in 0..<repeats {
        memcpyTimes.append(runMemcpy())
        let (time, received) = runStdinDecode()
        precondition(received == bodyBytes, "decoded \(received) of \(bodyBytes) body bytes")
        decodeTimes.append(time)
    }
    let memcpyCPU = Double(streamBytes) / median(memcpyTimes.map(\.cpu)) / 1e9
    let decodeCPU = Double(streamBytes) / median(decodeTimes.map(\.cpu)) / 1e9
    let memcpyWall = Double(streamBytes) / median(memcpyTimes.map(\.wall)) / 1e9
    let decodeWall = Double(streamBytes) / median(decodeTimes.map(\.wall)) / 1e9
    print("(a) 64 KiB STDIN records, \(streamBytes >> 20) MiB in \(readSize >> 10) KiB reads, median of \(repeats):")
    print(
        "    CPU time:  decoder \(format(decodeCPU)) GB/s   memcpy \(format(memcpyCPU)) GB/s   ratio \(format(decodeCPU / memcpyCPU))x"
    )
    print(
        "    wall time: decoder \(format(decodeWall)) GB/s   memcpy \(format(memcpyWall)) GB/s   ratio \(format(decodeWall / memcpyWall))x"
    )
}

// MARK: (b) typical nginx requests

/// The params nginx sends with the stock fastcgi_params (plus SCRIPT_FILENAME/PATH_INFO and a
/// browser's usual headers), in nginx's order.
let nginxParams: [(String, String)] = [
    ("QUERY_STRING", "page=2&sort=desc"),
    ("REQUEST_METHOD", "GET"),
    ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""),
    ("SCRIPT_NAME", "/app/index"),
    ("REQUEST_URI", "/app/index?page=2&sort=desc"),
    ("DOCUMENT_URI", "/app/index"),
    ("DOCUMENT_ROOT", "/var/www/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "https"),
    ("HTTPS", "on"),
    ("GATEWAY_INTERFACE", "CGI/1.1"),
    ("SERVER_SOFTWARE", "nginx/1.26.3"),
    ("REMOTE_ADDR", "203.0.113.54"),
    ("REMOTE_PORT", "51234"),
    ("SERVER_ADDR", "192.0.2.10"),
    ("SERVER_PORT", "443"),
    ("SERVER_NAME", "www.example.com"),
    ("REDIRECT_STATUS", "200"),
    ("SCRIPT_FILENAME", "/var/www/html/app/index"),
    ("PATH_INFO", ""),
    ("HTTP_HOST", "www.example.com"),
    (
        "HTTP_USER_AGENT",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    ),
    ("HTTP_ACCEPT", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
    ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br, zstd"),
    ("HTTP_REFERER", "https://www.example.com/app/index?page=1&sort=desc"),
    ("HTTP_COOKIE", "session=7f3c2a9e5b1d4c6f8a0e2b4d6f8a0c2e; theme=dark; lang=en"),
    ("HTTP_CONNECTION", "keep-alive"),
    ("HTTP_UPGRADE_INSECURE_REQUESTS", "1"),
    ("HTTP_SEC_FETCH_DEST", "document"),
    ("HTTP_SEC_FETCH_MODE", "navigate"),
]

func benchmarkRequests() {

    var oneRequest = ByteBuffer()
    RequestEncoder.writeBeginRequest(requestID: 1, keepConnection: true, into: &oneRequest)
    RequestEncoder.writeParams(nginxParams, requestID: 1, into: &oneRequest)
    RequestEncoder.writeStdinEnd(requestID: 1, into: &oneRequest)
    let requestSize = oneRequest.readableBytes
    let requestCount = arguments.count > 3 ? Int(arguments[3]) ?? 200_000 : 200_000
    var requestStream = ByteBuffer()
    requestStream.reserveCapacity(requestSize * requestCount)
    for _ in 0..<requestCount {
        requestStream.writeImmutableBuffer(oneRequest)
    }

    func runRequests() -> (Timing, Int) {
        var input = requestStream
        var decoder = RequestDecoder()
        var checksum = 0
        let start = Stopwatch()
        do {
            while let event = try decoder.next(from: &input) {
                switch event {
                case .params(_, let pairs):
                    checksum &+= pairs.count &+ pairs.storage.count
                case .stdinEnd(let id):
                    decoder.endRequest(id)  // as the server does once the response is written
                default:
                    break
                }
            }
        } catch {
            fatalError("benchmark stream rejected: \(error)")
        }
        return (start.elapsed(), checksum)
    }

    var requestTimes: [Timing] = []
    var expectedChecksum: Int?
    for _ in 0..<repeats {
        let (time, checksum) = runRequests()
        if let expectedChecksum { precondition(checksum == expectedChecksum) }
        expectedChecksum = checksum
        requestTimes.append(time)
    }
    let perSecondCPU = Double(requestCount) / median(requestTimes.map(\.cpu))
    let perSecondWall = Double(requestCount) / median(requestTimes.map(\.wall))
    print(
        "(b) nginx request (\(nginxParams.count) params, \(requestSize) bytes), \(requestCount) per run, median of \(repeats):"
    )
    let bestCPU = Double(requestCount) / requestTimes.map(\.cpu).min()!
    print(
        "    CPU time:  \(format(perSecondCPU / 1e6, 3)) M req/s   \(format(1e9 / perSecondCPU, 1)) ns/request   (best run \(format(bestCPU / 1e6, 3)) M req/s)"
    )
    print("    wall time: \(format(perSecondWall / 1e6, 3)) M req/s   \(format(1e9 / perSecondWall, 1)) ns/request")
}

if only.contains("a") {
    benchmarkStdin()
}
if only.contains("b") {
    benchmarkRequests()
}
