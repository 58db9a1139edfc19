package io.tidemark.workers.mirror;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Where the DR replica of one disk is served: an NBD export reached over a Unix socket or TCP,
 * written as an NBD URI ({@code nbd+unix:///EXPORT?socket=/path} or {@code nbd://host:port/EXPORT}).
 *
 * @param socket the Unix socket, for {@code nbd+unix}
 * @param host the host, for {@code nbd}
 * @param port the TCP port (10809 when the URI has none)
 * @param export the export name
 * @param tls TLS on the link (QEMU's NBD TLS); empty: plain NBD
 */
public record DrNbdTarget(Optional<Path> socket, Optional<String> host, int port, String export, Optional<DrTls> tls) {

    public DrNbdTarget(Optional<Path> socket, Optional<String> host, int port, String export) {
        this(socket, host, port, export, Optional.empty());
    }

    public DrNbdTarget {
        if (socket.isPresent() == host.isPresent()) {
            throw new IllegalArgumentException("a DR NBD target has either a Unix socket or a host");
        }
        if (export.isEmpty()) {
            throw new IllegalArgumentException("a DR NBD target needs an export name");
        }
    }

    /** An export on a Unix socket. */
    public static DrNbdTarget unix(Path socket, String export) {
        return new DrNbdTarget(Optional.of(socket), Optional.empty(), 0, export);
    }

    /**
     * Parses an NBD URI.
     *
     * @throws PermanentException naming the URI and the accepted forms
     */
    public static DrNbdTarget parse(String uri) {
        String forms = "; write nbd+unix:///EXPORT?socket=/path/to.sock or nbd://host:port/EXPORT";
        URI u;
        try {
            u = new URI(uri);
        } catch (URISyntaxException e) {
            throw new PermanentException("DR target '" + uri + "' is not a URI (" + e.getMessage() + ")" + forms, e);
        }
        String export = Optional.ofNullable(u.getPath()).orElse("").replaceFirst("^/", "");
        if ("nbd+unix".equals(u.getScheme())) {
            String query = Optional.ofNullable(u.getQuery()).orElse("");
            if (!query.startsWith("socket=") || query.length() == "socket=".length()) {
                throw new PermanentException("DR target '" + uri + "' names no socket" + forms);
            }
            return nonEmpty(uri, export, forms, unixOrNull(Path.of(query.substring("socket=".length())), export));
        }
        if ("nbd".equals(u.getScheme()) && u.getHost() != null) {
            return nonEmpty(
                    uri,
                    export,
                    forms,
                    export.isEmpty()
                            ? null
                            : new DrNbdTarget(
                                    Optional.empty(),
                                    Optional.of(u.getHost()),
                                    u.getPort() < 0 ? 10809 : u.getPort(),
                                    export));
        }
        throw new PermanentException("DR target '" + uri + "' is not an NBD URI" + forms);
    }

    /** The same export reached over TLS. */
    public DrNbdTarget withTls(DrTls t) {
        return new DrNbdTarget(socket, host, port, export, Optional.of(t));
    }

    /** The same export reached over TLS when {@code t} is present, plain otherwise. */
    public DrNbdTarget withTls(Optional<DrTls> t) {
        return new DrNbdTarget(socket, host, port, export, t);
    }

    private static DrNbdTarget unixOrNull(Path socket, String export) {
        return export.isEmpty() ? null : unix(socket, export);
    }

    private static DrNbdTarget nonEmpty(String uri, String export, String forms, DrNbdTarget t) {
        if (t == null) {
            throw new PermanentException("DR target '" + uri + "' names no export" + forms);
        }
        return t;
    }

    /** The {@code server} argument of QEMU's {@code nbd} blockdev driver. */
    ObjectNode qmpServer() {
        ObjectNode server = JsonNodeFactory.instance.objectNode();
        if (socket.isPresent()) {
            server.put("type", "unix").put("path", socket.get().toString());
        } else {
            server.put("type", "inet").put("host", host.get()).put("port", Integer.toString(port));
        }
        return server;
    }

    /** The URI form, for messages and status. */
    @Override
    public String toString() {
        return socket.map(s -> "nbd+unix:///" + export + "?socket=" + s)
                .orElseGet(() -> "nbd://" + host.get() + ":" + port + "/" + export);
    }
}
