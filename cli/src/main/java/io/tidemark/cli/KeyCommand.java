package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.Passphrase;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "key",
        mixinStandardHelpOptions = true,
        description = {
            "Encryption of repositories: create an encrypted primary repository, change a passphrase.",
            "Passphrases come from files or the environment, never from the command line.",
        },
        subcommands = {KeyCommand.Init.class, KeyCommand.ChangePassphrase.class})
final class KeyCommand {

    /** Where the new passphrase is read from when no --new-passphrase-file is given. */
    static final String NEW_PASSPHRASE_ENV = "TIDEMARK_NEW_PASSPHRASE";

    /** The environment; tests replace it. */
    static Map<String, String> env = System.getenv();

    @Command(
            name = "init",
            mixinStandardHelpOptions = true,
            description = {
                "Create the engine's primary repository, encrypted.",
                "Create the engine's primary repository (DATA/repo), encrypted: random master keys, wrapped",
                "under the passphrase with PBKDF2-HMAC-SHA256 (encryption.kdfIterations, default 600000).",
                "`tidemark run` does the same on first start when a passphrase is configured; use this to",
                "create it ahead, or to check the passphrase setup. Replication targets receive the wrapped",
                "keys with their first restore point. Losing the passphrase loses the data: keep it safe.",
                "",
                "Example:  tidemark key init --config /etc/tidemark/tidemark.yaml \\",
                "            --passphrase-file /etc/tidemark/passphrase",
            })
    static final class Init implements Callable<Integer> {
        @Mixin
        EngineOptions engine;

        @Option(names = "--json", description = "print a JSON summary instead of text")
        boolean json;

        @Override
        public Integer call() throws IOException {
            EngineConfig c = engine.engineConfig();
            EngineConfig.EncryptionConfig enc = engine.passphrase.encryption(c);
            Passphrase passphrase = enc.passphrase(env)
                    .orElseThrow(() -> new PermanentException("no passphrase: put it in a file named by"
                            + " --passphrase-file or encryption.passphraseFile, or in the environment variable "
                            + EngineConfig.EncryptionConfig.DEFAULT_PASSPHRASE_ENV));
            if (c.primaryIsDefault()) {
                Files.createDirectories(c.dataOrDefault().resolve("repo"));
            }
            try (ObjectTarget target = engine.primary(c)) {
                if (target.exists(ObjectKeys.CONFIG)) {
                    throw new PermanentException("there is a repository at " + target.describe() + " already;"
                            + " an existing repository cannot be encrypted in place. Use an empty --data"
                            + " directory, or `tidemark key change-passphrase` for an encrypted one");
                }
                Repository repo =
                        Repository.openOrInit(target, RepositoryConfig.defaults(), passphrase, enc.iterations());
                print(
                        json,
                        repo.describe(),
                        null,
                        "created encrypted repository " + repo.describe() + " (AES-256-GCM, " + enc.iterations()
                                + " PBKDF2 iterations)");
            }
            return 0;
        }
    }

    @Command(
            name = "change-passphrase",
            mixinStandardHelpOptions = true,
            description = {
                "Change the passphrase of an encrypted repository.",
                "Re-wrap a repository's master keys under a new passphrase. Only its key objects (keys/)",
                "change: a new one is written and checked, then the old one removed, so a process killed",
                "midway leaves a repository that opens with either passphrase. Data is not re-encrypted.",
                "Each location holds its own key objects: run it for the primary and for each target.",
                "The current passphrase comes from --passphrase-file, encryption.passphraseFile or",
                "$TIDEMARK_PASSPHRASE; the new one from --new-passphrase-file or $" + NEW_PASSPHRASE_ENV + ".",
                "",
                "Example:  tidemark key change-passphrase --config tidemark.yaml --target offsite \\",
                "            --passphrase-file old.pass --new-passphrase-file new.pass",
            })
    static final class ChangePassphrase implements Callable<Integer> {
        @Mixin
        EngineOptions engine;

        @Option(
                names = {"--from", "--target"},
                paramLabel = "NAME",
                description = "a replication target of the engine config (default: the primary repository)")
        String target;

        @Option(
                names = "--new-passphrase-file",
                paramLabel = "FILE",
                description = "file holding the new passphrase (default: $" + NEW_PASSPHRASE_ENV + ")")
        Path newPassphraseFile;

        @Option(names = "--json", description = "print a JSON summary instead of text")
        boolean json;

        @Override
        public Integer call() {
            EngineConfig c = engine.engineConfig();
            EngineConfig.EncryptionConfig enc = engine.passphrase.encryption(c);
            Passphrase next = new EngineConfig.EncryptionConfig(newPassphraseFile, NEW_PASSPHRASE_ENV, null)
                    .passphrase(env)
                    .orElseThrow(() -> new PermanentException("no new passphrase: put it in a file named by"
                            + " --new-passphrase-file or in the environment variable " + NEW_PASSPHRASE_ENV));
            try (ObjectTarget location = engine.open(c, target)) {
                Repository repo = Repository.open(location, enc.source(env));
                if (!repo.encrypted()) {
                    throw new PermanentException(
                            "repository " + repo.describe() + " is not encrypted; it has no passphrase to change");
                }
                String keyObject = repo.changePassphrase(next, enc.iterations());
                print(
                        json,
                        repo.describe(),
                        keyObject,
                        "changed the passphrase of " + repo.describe() + ": new key object " + keyObject
                                + ", the old one removed");
            }
            return 0;
        }
    }

    private static void print(boolean json, String location, String keyObject, String text) {
        if (json) {
            ObjectNode o = Json.mapper().createObjectNode();
            o.put("location", location);
            o.put("encrypted", true);
            if (keyObject != null) {
                o.put("keyObject", keyObject);
            }
            System.out.println(o.toPrettyString());
        } else {
            System.out.println(text);
        }
    }
}
