internal import GatewayTestHarness

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

/// What the `.nginx` transport needs from the system, and the `location` it configures.
enum NginxRequirement {
    /// The `fastcgi_params` file nginx's packages install, which the location includes.
    static let fastCGIParams = "/etc/nginx/fastcgi_params"

    /// Throws, saying how to install it, when nginx or its `fastcgi_params` is missing.
    static func check() throws {
        do {
            _ = try RequiredTool.locate("nginx")
        } catch {
            throw GatewayTestError(
                "the .nginx transport needs nginx, which is not installed (looked in /usr/sbin, /usr/bin, /usr/local/sbin …):"
                    + " install it (apt-get install nginx-light, brew install nginx) or leave .nginx out"
                    + " (GatewayTestTransport.nginx.isAvailable says whether it can run)"
            )
        }
        guard access(fastCGIParams, R_OK) == 0 else {
            throw GatewayTestError("the .nginx transport needs \(fastCGIParams), which nginx's package installs")
        }
    }

    /// The application at the root, over the Unix socket at `socketPath`: the location of the
    /// project's `nginx/fastcgi-unix.conf`.
    static func location(_ socketPath: String) -> String {
        """
                location / {
                    include fastcgi_params;
                    fastcgi_param SCRIPT_NAME "";
                    fastcgi_param PATH_INFO $uri;
                    fastcgi_pass unix:\(socketPath);
                }
        """
    }
}
