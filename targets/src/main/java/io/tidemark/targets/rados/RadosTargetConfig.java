package io.tidemark.targets.rados;

import io.tidemark.core.PermanentException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;

/**
 * Where and how {@link RadosObjectTarget} stores objects.
 *
 * @param confFile a {@code ceph.conf} to read first (monitors, keyring, other client options);
 *     {@code null} to configure the client from {@code monHost} and {@code key} alone
 * @param monHost the monitors, e.g. {@code v2:10.0.0.1:3300,v2:10.0.0.2:3300} or {@code
 *     10.0.0.1:6789}; overrides the conf file's {@code mon host}; {@code null} to take it from
 *     {@code confFile}
 * @param clientName the cephx user, {@code tidemark} or {@code client.tidemark}; normalised to
 *     the id without {@code client.}
 * @param key the user's base64 cephx secret, read by the caller from a file or the environment;
 *     never logged, never in messages or {@link #toString()}; {@code null} when {@code confFile}
 *     names a keyring that holds it
 * @param pool the pool, which must exist
 * @param keyPrefix the key space inside the pool: object {@code k} is the RADOS object {@code
 *     keyPrefix + k}; {@code ""} for the whole pool, otherwise normalised to end with {@code /};
 *     never starts with {@code /}
 * @param maxObjectBytes the largest object {@link RadosObjectTarget#putIfAbsent} accepts; 0 for
 *     {@link #DEFAULT_MAX_OBJECT_BYTES}; at most {@link #LIMIT_MAX_OBJECT_BYTES}
 * @param timeout how long connecting, and each operation, may wait for the cluster before it fails
 *     as retriable; {@code null} for {@link #DEFAULT_TIMEOUT}
 */
public record RadosTargetConfig(
        Path confFile,
        String monHost,
        String clientName,
        String key,
        String pool,
        String keyPrefix,
        int maxObjectBytes,
        Duration timeout) {

    /** 64 MiB: far above Tidemark's objects (a few MiB), well below what RADOS accepts. */
    public static final int DEFAULT_MAX_OBJECT_BYTES = 64 << 20;

    /**
     * 90 MiB: each object is written by one RADOS operation, and OSDs refuse operations larger than
     * {@code osd_max_write_size} (90 MiB by default); objects themselves are capped at {@code
     * osd_max_object_size} (128 MiB).
     */
    public static final int LIMIT_MAX_OBJECT_BYTES = 90 << 20;

    /** 30 s. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);

    /** Validates the settings and applies defaults; bad settings are permanent errors. */
    public RadosTargetConfig {
        confFile = confFile == null ? null : confFile.toAbsolutePath().normalize();
        if (monHost != null && monHost.isBlank()) {
            monHost = null;
        }
        if (confFile == null && monHost == null) {
            throw invalid("set the monitors (monHost) or a ceph.conf (confFile)");
        }
        if (clientName == null || clientName.isBlank()) {
            throw invalid("client name is missing (the cephx user, e.g. client.tidemark)");
        }
        clientName = clientName.strip();
        if (clientName.startsWith("client.")) {
            clientName = clientName.substring("client.".length());
        }
        if (clientName.isEmpty()) {
            throw invalid("client name is missing (the cephx user, e.g. client.tidemark)");
        }
        if (key != null && key.isBlank()) {
            key = null;
        }
        if (key != null && !isCephxKey(key)) {
            // checked here because librados prints a key it cannot decode to stderr
            throw invalid("the key of client." + clientName + " is not a cephx key: expected the base64 'key'"
                    + " value that 'ceph auth get client." + clientName + "' shows (check keyEnv/keyFile)");
        }
        if (key == null && confFile == null) {
            throw invalid("the cephx key of client." + clientName
                    + " is missing: set keyEnv or keyFile, or a confFile whose keyring holds it");
        }
        if (pool == null || pool.isBlank()) {
            throw invalid("pool is missing");
        }
        keyPrefix = keyPrefix == null ? "" : keyPrefix;
        if (keyPrefix.startsWith("/")) {
            throw invalid("key prefix '" + keyPrefix + "' must not start with '/'");
        }
        if (!keyPrefix.isEmpty() && !keyPrefix.endsWith("/")) {
            keyPrefix = keyPrefix + "/";
        }
        if (maxObjectBytes == 0) {
            maxObjectBytes = DEFAULT_MAX_OBJECT_BYTES;
        }
        if (maxObjectBytes < 0 || maxObjectBytes > LIMIT_MAX_OBJECT_BYTES) {
            throw invalid("maxObjectBytes " + maxObjectBytes + " is out of range: 1 to " + LIMIT_MAX_OBJECT_BYTES
                    + " (RADOS refuses larger single writes: osd_max_write_size)");
        }
        timeout = timeout == null ? DEFAULT_TIMEOUT : timeout;
        if (timeout.isNegative() || timeout.toSeconds() < 1) {
            throw invalid("timeout " + timeout + " must be at least one second");
        }
    }

    /** Settings with the default object cap and timeout. */
    public RadosTargetConfig(
            Path confFile, String monHost, String clientName, String key, String pool, String keyPrefix) {
        this(confFile, monHost, clientName, key, pool, keyPrefix, 0, null);
    }

    /** A copy with another key prefix. */
    public RadosTargetConfig withKeyPrefix(String prefix) {
        return new RadosTargetConfig(confFile, monHost, clientName, key, pool, prefix, maxObjectBytes, timeout);
    }

    /** A copy with another cephx key ({@code null} to take it from the conf file's keyring). */
    public RadosTargetConfig withKey(String key) {
        return new RadosTargetConfig(confFile, monHost, clientName, key, pool, keyPrefix, maxObjectBytes, timeout);
    }

    /** A copy with another object cap (0 for the default). */
    public RadosTargetConfig withMaxObjectBytes(int maxObjectBytes) {
        return new RadosTargetConfig(confFile, monHost, clientName, key, pool, keyPrefix, maxObjectBytes, timeout);
    }

    /** A copy with another timeout ({@code null} for the default). */
    public RadosTargetConfig withTimeout(Duration timeout) {
        return new RadosTargetConfig(confFile, monHost, clientName, key, pool, keyPrefix, maxObjectBytes, timeout);
    }

    /** {@code client.<id>}, as Ceph names the user in its tools and caps. */
    public String clientEntity() {
        return "client." + clientName;
    }

    /** {@code rados://pool/prefix}, the location without the cluster. */
    public String location() {
        return "rados://" + pool + "/" + keyPrefix;
    }

    /** Every setting except the key, which is shown as {@code ***} (or {@code null}). */
    @Override
    public String toString() {
        return "RadosTargetConfig[confFile=" + confFile + ", monHost=" + monHost + ", clientName=" + clientName
                + ", key=" + (key == null ? null : "***") + ", pool=" + pool + ", keyPrefix=" + keyPrefix
                + ", maxObjectBytes=" + maxObjectBytes + ", timeout=" + timeout + "]";
    }

    /**
     * Whether {@code key} is what Ceph's {@code CryptoKey} decodes: base64 of a little-endian u16
     * type (0 none, 1 AES), a u32+u32 creation time, a u16 length and that many secret bytes.
     */
    private static boolean isCephxKey(String key) {
        byte[] raw;
        try {
            raw = Base64.getDecoder().decode(key.strip());
        } catch (IllegalArgumentException e) {
            return false;
        }
        if (raw.length < 12) {
            return false;
        }
        ByteBuffer in = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        int type = in.getShort(0);
        int length = Short.toUnsignedInt(in.getShort(10));
        return (type == 0 || type == 1) && raw.length == 12 + length;
    }

    private static PermanentException invalid(String why) {
        return new PermanentException("invalid RADOS target configuration: " + why);
    }
}
