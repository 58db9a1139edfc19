package io.tidemark.targets;

import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.file.Durability;
import io.tidemark.targets.file.FileObjectTarget;
import java.nio.file.Path;

/**
 * {@code type: file}: a repository in a directory (a local disk or an NFS mount).
 *
 * @param path the directory of the repository
 * @param transfer retries and bandwidth; {@code null} for {@link TransferLimits#DEFAULTS}
 * @param durability {@code durability}: how a barrier makes the written objects durable; {@code
 *     null} for {@link Durability#PER_FILE} ({@link Durability#FILESYSTEM}: {@code syncfs}, for a
 *     repository on a file system of its own, ADR 25)
 */
public record FileTargetSpec(Path path, TransferLimits transfer, Durability durability) implements TargetSpec {

    /** The {@code type} of this kind. */
    public static final String TYPE = "file";

    /** Checks that {@code path} is given. */
    public FileTargetSpec {
        TargetSpecException.Collector problems = new TargetSpecException.Collector();
        if (path == null) {
            problems.add(null, "type file needs 'path', the directory of the repository");
        }
        transfer = transfer == null ? TransferLimits.DEFAULTS : transfer;
        durability = durability == null ? Durability.PER_FILE : durability;
        problems.check();
    }

    /** A directory target with the default durability. */
    public FileTargetSpec(Path path, TransferLimits transfer) {
        this(path, transfer, Durability.PER_FILE);
    }

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public ObjectTarget adapter(String name, Origin origin) {
        return new FileObjectTarget(path, durability);
    }

    /** A builder with nothing set. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds a {@link FileTargetSpec} setting by setting. */
    public static final class Builder extends TargetSpecBuilder<Builder, FileTargetSpec> {
        private Path path;
        private Durability durability;

        Builder() {}

        /** {@code path}. */
        public Builder path(Path path) {
            this.path = path;
            return this;
        }

        /** {@code durability}; {@code null} for {@link Durability#PER_FILE}. */
        public Builder durability(Durability durability) {
            this.durability = durability;
            return this;
        }

        @Override
        public FileTargetSpec build() {
            return build(transfer -> new FileTargetSpec(path, transfer, durability));
        }
    }
}
