package io.tidemark.testkit.qemu;

import io.tidemark.core.process.ExternalCommand;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A throwaway x509 PKI for NBD-over-TLS tests, made with {@code openssl}: a CA and a server and a
 * client certificate for {@code 127.0.0.1}/{@code localhost}, laid out as QEMU's {@code
 * tls-creds-x509} expects ({@code ca-cert.pem}, {@code server-cert.pem}, {@code server-key.pem},
 * {@code client-cert.pem}, {@code client-key.pem}). {@link #serverDir()} and {@link #clientDir()}
 * hold each side's files only, as the two sites would.
 */
public final class TestPki {

    private final Path root;

    private TestPki(Path root) {
        this.root = root;
    }

    /** Makes a new CA and its server and client certificates under {@code dir}. */
    public static TestPki create(Path dir) {
        Path root = dir.toAbsolutePath();
        try {
            Files.createDirectories(root.resolve("server"));
            Files.createDirectories(root.resolve("client"));
            openssl(
                    root,
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    "ca-key.pem",
                    "-out",
                    "ca-cert.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=Tidemark test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign");
            for (String who : new String[] {"server", "client"}) {
                Files.writeString(
                        root.resolve(who + ".ext"),
                        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage="
                                + (who.equals("server") ? "serverAuth" : "clientAuth")
                                + "\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
                openssl(
                        root,
                        "req",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-keyout",
                        who + "/" + who + "-key.pem",
                        "-out",
                        who + ".csr",
                        "-subj",
                        "/CN=127.0.0.1");
                openssl(
                        root,
                        "x509",
                        "-req",
                        "-in",
                        who + ".csr",
                        "-CA",
                        "ca-cert.pem",
                        "-CAkey",
                        "ca-key.pem",
                        "-CAcreateserial",
                        "-out",
                        who + "/" + who + "-cert.pem",
                        "-days",
                        "2",
                        "-extfile",
                        who + ".ext");
                Files.copy(root.resolve("ca-cert.pem"), root.resolve(who).resolve("ca-cert.pem"));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new TestPki(root);
    }

    private static void openssl(Path cwd, String... args) {
        String[] cmd = new String[args.length + 4];
        cmd[0] = "sh";
        cmd[1] = "-c";
        cmd[2] = "cd \"$0\" && exec openssl \"$@\"";
        cmd[3] = cwd.toString();
        System.arraycopy(args, 0, cmd, 4, args.length);
        ExternalCommand.of(java.util.List.of(cmd))
                .mergeStderr()
                .ifMissing("install openssl")
                .run();
    }

    /** The DR daemon's directory: ca-cert.pem, server-cert.pem, server-key.pem. */
    public Path serverDir() {
        return root.resolve("server");
    }

    /** The VM host's directory: ca-cert.pem, client-cert.pem, client-key.pem. */
    public Path clientDir() {
        return root.resolve("client");
    }
}
