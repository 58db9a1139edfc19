package io.tidemark.cli;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.engine.Targets;
import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.PolicySet;
import io.tidemark.repository.PassphraseSource;
import io.tidemark.targets.TargetSpec;
import java.nio.file.Path;
import java.util.TreeSet;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The options by which offline commands ({@code status}, {@code prune}, {@code restore}, {@code
 * verify}, {@code gc}, {@code drill}, {@code key}, {@code dr}) find the engine's repositories and
 * policies: the engine config, overridden by {@code --data} and {@code --policies}.
 */
final class EngineOptions {

    /** The policy directory when neither the config nor {@code --policies} names one. */
    static final Path DEFAULT_POLICIES = EngineConfig.DEFAULT_POLICIES;

    @Option(names = "--config", description = "engine config YAML (targets, data, policies)")
    Path config;

    @Option(
            names = "--data",
            description =
                    "data directory holding the primary repository unless the config names repository: (default: ./tidemark-data)")
    Path data;

    @Option(names = "--policies", description = "policy directory (default: ./policies)")
    Path policies;

    @Mixin
    PassphraseOptions passphrase;

    /** Where the passphrase of encrypted repositories comes from. */
    PassphraseSource passphrases(EngineConfig c) {
        return passphrase.source(c);
    }

    /** The engine config with the flags applied. */
    EngineConfig engineConfig() {
        EngineConfig.Builder c = (config != null ? EngineConfig.load(config) : EngineConfig.empty()).toBuilder();
        if (data != null) {
            c.data(data);
        }
        if (policies != null) {
            c.policies(policies);
        }
        return c.build();
    }

    /** The primary repository: {@code repository:} of the engine config, else {@code <data>/repo}. */
    ObjectTarget primary(EngineConfig c) {
        return Targets.primary(c);
    }

    /**
     * The primary repository's location when {@code target} is null, else the engine config's target
     * of that name.
     *
     * @throws PermanentException when the config has no such target (the message names those it has)
     */
    ObjectTarget open(EngineConfig c, String target) {
        if (target == null) {
            return primary(c);
        }
        TargetSpec t = c.targets().get(target);
        if (t == null) {
            throw new PermanentException("target '" + target + "' is not in the engine config; it defines "
                    + (c.targets().isEmpty()
                            ? "none (pass --config)"
                            : String.join(", ", new TreeSet<>(c.targets().keySet()))));
        }
        return t.open(target);
    }

    /**
     * The repository a {@code --from} names, as every command that reads restore points takes it:
     * {@code local} (the primary repository), a target of the engine config by name, a directory or
     * a URL ({@code file:…}, {@code s3://…}).
     *
     * @throws PermanentException for a bare name the config does not define (the message names those it does)
     */
    ObjectTarget source(EngineConfig c, String from) {
        return io.tidemark.engine.Targets.named(c, from);
    }

    /** The policies, parsed; a malformed one is a {@link io.tidemark.policies.PolicyException}. */
    PolicySet policies(EngineConfig c) {
        return new PolicyParser().loadDirectory(c.policiesOrDefault());
    }
}
