package io.tidemark.workers.mirror;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * TLS on the NBD link to the DR site (QEMU's NBD TLS with x509 credentials): the VM host's
 * directory of {@code ca-cert.pem}, {@code client-cert.pem} and {@code client-key.pem} (a {@code
 * tls-creds-x509} object with {@code endpoint=client}), and the name the DR daemon's certificate
 * must carry when it differs from the host in the NBD URI. The key stays a file on the host: no
 * secret passes through policies, events or logs.
 *
 * @param dir absolute directory holding the client's credentials
 * @param hostname the name checked against the server certificate; empty: the URI's host
 */
public record DrTls(Path dir, Optional<String> hostname) {

    /** The files QEMU's client endpoint with peer verification needs in {@link #dir}. */
    public static final List<String> FILES = List.of("ca-cert.pem", "client-cert.pem", "client-key.pem");

    public DrTls {
        if (!dir.isAbsolute()) {
            throw new IllegalArgumentException("the DR TLS directory must be absolute, got " + dir);
        }
        hostname = hostname.filter(h -> !h.isBlank());
    }

    /** The needed files that are missing or unreadable in {@link #dir}; empty when all are there. */
    public List<String> missingFiles() {
        return FILES.stream().filter(f -> !Files.isReadable(dir.resolve(f))).toList();
    }
}
