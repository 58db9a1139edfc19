package io.tidemark.targets;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.rados.RadosObjectTarget;
import io.tidemark.targets.rados.RadosTargetConfig;
import java.nio.file.Path;

/**
 * {@code type: rados}: a key space in a Ceph pool, reached through librados.
 *
 * @param confFile a {@code ceph.conf} to read first (monitors, keyring); {@code null} to reach the
 *     cluster from {@code monHost} and {@code key} alone
 * @param monHost the monitors, for example {@code v2:10.0.0.1:3300}; overrides the conf file's
 * @param clientName the cephx user; {@code null} for {@value #DEFAULT_CLIENT_NAME}
 * @param key where the user's cephx key is read from; {@code null} to take it from the keyring
 *     {@code confFile} names
 * @param pool the pool, which must exist
 * @param prefix the key space inside the pool; {@code ""} for the whole pool
 * @param transfer retries and bandwidth; {@code null} for {@link TransferLimits#DEFAULTS}
 */
public record RadosTargetSpec(
        Path confFile,
        String monHost,
        String clientName,
        SecretSource key,
        String pool,
        String prefix,
        TransferLimits transfer)
        implements TargetSpec {

    /** The {@code type} of this kind. */
    public static final String TYPE = "rados";

    /** The cephx user when none is given. */
    public static final String DEFAULT_CLIENT_NAME = "client.admin";

    /** Checks the settings together and applies the defaults. */
    public RadosTargetSpec {
        TargetSpecException.Collector problems = new TargetSpecException.Collector();
        if (monHost != null && monHost.isBlank()) {
            monHost = null;
        }
        if (monHost == null && confFile == null) {
            problems.add(null, "type rados needs 'monHost' or 'confFile'");
        }
        if (pool == null || pool.isBlank()) {
            problems.add(null, "type rados needs 'pool'");
        }
        clientName = clientName == null || clientName.isBlank() ? DEFAULT_CLIENT_NAME : clientName.strip();
        prefix = prefix == null ? "" : prefix;
        if (prefix.startsWith("/")) {
            problems.add("prefix", "key prefix '" + prefix + "' must not start with '/'");
        }
        if (key == null && confFile == null) {
            problems.add(
                    null, "type rados needs the cephx key: keyEnv or keyFile, or a confFile whose keyring holds it");
        }
        transfer = transfer == null ? TransferLimits.DEFAULTS : transfer;
        problems.check();
    }

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public ObjectTarget adapter(String name, Origin origin) {
        return RadosObjectTarget.connect(config(name));
    }

    /** The adapter's settings, with the cephx key read from {@link #key()} (or left to the keyring). */
    public RadosTargetConfig config(String name) {
        String secret = key == null ? null : key.read(name, "key");
        try {
            return new RadosTargetConfig(confFile, monHost, clientName, secret, pool, prefix);
        } catch (PermanentException e) {
            throw new PermanentException("target '" + name + "': " + e.getMessage(), e);
        }
    }

    /** A builder with nothing set. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds a {@link RadosTargetSpec} setting by setting; the methods are named as the config keys. */
    public static final class Builder extends TargetSpecBuilder<Builder, RadosTargetSpec> {
        private Path confFile;
        private String monHost;
        private String clientName;
        private String keyEnv;
        private String keyFile;
        private String pool;
        private String prefix;

        Builder() {}

        public Builder confFile(Path confFile) {
            this.confFile = confFile;
            return this;
        }

        public Builder monHost(String monHost) {
            this.monHost = monHost;
            return this;
        }

        public Builder clientName(String clientName) {
            this.clientName = clientName;
            return this;
        }

        public Builder keyEnv(String keyEnv) {
            this.keyEnv = keyEnv;
            return this;
        }

        public Builder keyFile(String keyFile) {
            this.keyFile = keyFile;
            return this;
        }

        public Builder pool(String pool) {
            this.pool = pool;
            return this;
        }

        public Builder prefix(String prefix) {
            this.prefix = prefix;
            return this;
        }

        @Override
        public RadosTargetSpec build() {
            return build(transfer -> new RadosTargetSpec(
                    confFile, monHost, clientName, SecretSource.of(keyEnv, keyFile), pool, prefix, transfer));
        }
    }
}
