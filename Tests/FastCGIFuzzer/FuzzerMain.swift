// Fuzz target for the FastCGI decoders.
//
// Built with `-DFUZZING -sanitize=fuzzer` (see scripts/fuzz) it is a libFuzzer target. In normal
// builds it is a regression runner: `FastCGIFuzzer FILE_OR_DIR...` replays every input.
//
// Why not main.swift with top-level code: under -parse-as-library top-level statements are
// rejected even inside an inactive #if branch. And SwiftPM links every executable on Linux with
// `main` aliased to `FastCGIFuzzer_main`, so the fuzz build defines that symbol and hands control
// to libFuzzer through its documented `LLVMFuzzerRunDriver`.
//
// Input layout: the first byte steers the run (where the input is split into two reads, which
// limits apply, when begun requests are ended); the rest is the byte stream.

import FastCGI
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Feeds `data` to a RequestDecoder and a ResponseDecoder and checks their invariants.
/// Any trap here (including a failed precondition) is a bug the fuzzer reports.
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let control = data.first else { return }
    let stream = UnsafeRawBufferPointer(rebasing: data[1...])
    let split = stream.isEmpty ? 0 : Int(control) * stream.count / 255
    let pieces = [
        UnsafeRawBufferPointer(rebasing: stream[..<split]), UnsafeRawBufferPointer(rebasing: stream[split...]),
    ]
    let limits =
        control & 1 == 0
        ? DecoderLimits()
        : DecoderLimits(maxParamsBytes: 512, maxParamsPairs: 16, maxActiveRequests: 4, maxPendingParamsBytes: 1024)

    var decoder = RequestDecoder(limits: limits)
    var begun: [UInt16] = []
    var steer = UInt32(control) | 1
    var consumed = 0
    requests: for piece in pieces {
        var buffer = ByteBuffer(bytes: piece)
        do {
            while let event = try decoder.next(from: &buffer) {
                switch event {
                case .begin(let id, _, _):
                    begun.append(id)
                case .params(_, let pairs):
                    precondition(pairs.layout.count % 4 == 0)
                    var index = 0
                    while index < pairs.layout.count {
                        // Exactly what Gateway.CGIVariables(storage:layout:) requires.
                        precondition(Int(pairs.layout[index]) + Int(pairs.layout[index + 1]) <= pairs.storage.count)
                        precondition(Int(pairs.layout[index + 2]) + Int(pairs.layout[index + 3]) <= pairs.storage.count)
                        index += 4
                    }
                    _ = pairs.pairs
                case .stdin(_, let chunk), .data(_, let chunk):
                    precondition(chunk.readableBytes > 0, "empty body chunk")
                default:
                    break
                }
                precondition(decoder.activeRequestCount <= limits.maxActiveRequests)
                precondition(
                    decoder.pendingParamsBytes >= 0 && decoder.pendingParamsBytes <= limits.maxPendingParamsBytes
                )
                precondition(decoder.activeRequestCount > 0 || decoder.pendingParamsBytes == 0, "params budget leaked")
                // xorshift: end a begun request now and then, as a server does.
                steer ^= steer << 13
                steer ^= steer >> 17
                steer ^= steer << 5
                if !begun.isEmpty, steer % 3 == 0 {
                    decoder.endRequest(begun.remove(at: Int(steer >> 8) % begun.count))
                }
            }
            precondition(buffer.readableBytes == 0, "nil returned with readable bytes left")
            consumed += piece.count
            precondition(decoder.streamOffset == consumed, "stream offset out of step")
        } catch {
            precondition(error.streamOffset <= consumed + piece.count)
            _ = error.description
            break requests
        }
    }

    var responseDecoder = ResponseDecoder()
    responses: for piece in pieces {
        var buffer = ByteBuffer(bytes: piece)
        do {
            while let event = try responseDecoder.next(from: &buffer) {
                if case .stdout(_, let chunk) = event { precondition(chunk.readableBytes > 0) }
                if case .stderr(_, let chunk) = event { precondition(chunk.readableBytes > 0) }
            }
            precondition(buffer.readableBytes == 0)
        } catch {
            _ = error.description
            break responses
        }
    }
}

#if FUZZING
/// libFuzzer's entry point: hands one input to `fuzzOne`, whose preconditions are the findings.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// libFuzzer's documented entry for programs that have their own `main`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The program entry SwiftPM links `main` to; runs libFuzzer's driver.
@_cdecl("FastCGIFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
#else
/// Reads a whole file without Foundation.
func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count <= 0 { break }
        bytes += chunk[..<count]
    }
    return bytes
}

/// The files in `path` if it is a directory, else `path` itself.
func inputs(_ path: String) -> [String] {
    guard let directory = opendir(path) else { return [path] }
    defer { closedir(directory) }
    var files: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) {
            String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { files.append(path + "/" + name) }
    }
    return files.sorted()
}

/// The regression runner: replays the files and directories given as arguments.
@main
struct FuzzerMain {
    static func main() {
        var replayed = 0
        for argument in CommandLine.arguments.dropFirst() {
            for path in inputs(argument) {
                guard let bytes = readFile(path) else {
                    print("cannot read \(path)")
                    exit(1)
                }
                bytes.withUnsafeBytes { fuzzOne($0) }
                replayed += 1
            }
        }
        print("replayed \(replayed) inputs, no failures")
    }
}
#endif
