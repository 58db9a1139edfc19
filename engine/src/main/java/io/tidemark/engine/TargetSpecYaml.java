package io.tidemark.engine;

import com.fasterxml.jackson.annotation.JsonTypeInfo;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.JsonDeserializer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.annotation.JsonDeserialize;
import com.fasterxml.jackson.databind.annotation.JsonPOJOBuilder;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.jsontype.NamedType;
import io.tidemark.core.PermanentException;
import io.tidemark.policies.BandwidthSyntax;
import io.tidemark.targets.FileTargetSpec;
import io.tidemark.targets.RadosTargetSpec;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.TargetSpec;
import io.tidemark.targets.TargetSpecBuilder;
import io.tidemark.targets.file.Durability;
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;

/**
 * How a {@code targets:} entry of the engine config becomes a {@link TargetSpec}: Jackson picks the
 * spec by {@code type} and fills its builder key by key, so a key of no builder method is an
 * unknown key. The annotations are mix-ins, keeping the records of the targets module free of
 * Jackson; the text syntaxes of durations and rates (shared with policies) are read here.
 */
final class TargetSpecYaml {

    private TargetSpecYaml() {}

    /** Teaches {@code mapper} the target specs. */
    static void register(ObjectMapper mapper) {
        mapper.addMixIn(TargetSpec.class, SpecMixin.class);
        mapper.addMixIn(FileTargetSpec.class, FileMixin.class);
        mapper.addMixIn(S3TargetSpec.class, S3Mixin.class);
        mapper.addMixIn(RadosTargetSpec.class, RadosMixin.class);
        mapper.addMixIn(FileTargetSpec.Builder.class, FileBuilderMixin.class);
        mapper.addMixIn(S3TargetSpec.Builder.class, BuilderMixin.class);
        mapper.addMixIn(RadosTargetSpec.Builder.class, BuilderMixin.class);
        mapper.addMixIn(TargetSpecBuilder.class, TransferMixin.class);
        TargetSpec.TYPES.forEach((name, type) -> mapper.registerSubtypes(new NamedType(type, name)));
    }

    /**
     * The keys a target of {@code type} takes, besides {@code type}: the one-argument methods of its
     * builder; empty for an unknown type.
     */
    static Set<String> keys(String type) {
        Class<? extends TargetSpec> spec = TargetSpec.TYPES.get(type);
        Set<String> keys = new TreeSet<>();
        if (spec == null) {
            return keys;
        }
        try {
            for (Method m : spec.getMethod("builder").getReturnType().getMethods()) {
                if (m.getParameterCount() == 1
                        && !Modifier.isStatic(m.getModifiers())
                        && m.getDeclaringClass() != Object.class) {
                    keys.add(m.getName());
                }
            }
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(spec + " has no builder()", e);
        }
        return keys;
    }

    @JsonTypeInfo(use = JsonTypeInfo.Id.NAME, include = JsonTypeInfo.As.PROPERTY, property = "type")
    interface SpecMixin {}

    @JsonDeserialize(builder = FileTargetSpec.Builder.class)
    interface FileMixin {}

    @JsonDeserialize(builder = S3TargetSpec.Builder.class)
    interface S3Mixin {}

    @JsonDeserialize(builder = RadosTargetSpec.Builder.class)
    interface RadosMixin {}

    @JsonPOJOBuilder(withPrefix = "")
    interface BuilderMixin {}

    @JsonPOJOBuilder(withPrefix = "")
    abstract static class FileBuilderMixin {
        @JsonDeserialize(using = DurabilityText.class)
        abstract Object durability(Durability durability);
    }

    abstract static class TransferMixin {
        @JsonDeserialize(using = DurationText.class)
        abstract Object retryDeadline(Duration retryDeadline);

        @JsonDeserialize(using = RateText.class)
        abstract Object bandwidthLimit(long bytesPerSecond);
    }

    /**
     * A setting written in a syntax of its own; a value not in it is reported as {@code expected
     * <what>, got "<value>"} at its place in the file.
     */
    abstract static class TextSetting<T> extends JsonDeserializer<T> {
        private final String expected;
        private final Class<?> type;

        TextSetting(String expected, Class<?> type) {
            this.expected = expected;
            this.type = type;
        }

        /** @throws PermanentException when {@code text} is not in the syntax */
        abstract T parse(String text);

        @Override
        public T deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            String text = p.getValueAsString();
            try {
                return parse(text == null ? "-" : text);
            } catch (PermanentException e) {
                throw InvalidFormatException.from(p, "expected " + expected + ", got \"" + text + "\"", text, type);
            }
        }
    }

    /** {@code retryDeadline}: a duration such as {@code 30s}, {@code 5m} or {@code 1h30m}; {@code 0s} is one attempt. */
    static final class DurationText extends TextSetting<Duration> {
        DurationText() {
            super("a duration such as 30s, 5m or 1h30m (0s: a single attempt)", Duration.class);
        }

        @Override
        Duration parse(String text) {
            return Targets.retryDeadline("", text);
        }
    }

    /** {@code durability} of a directory target: {@code per-file} or {@code filesystem} (ADR 25). */
    static final class DurabilityText extends TextSetting<Durability> {
        DurabilityText() {
            super("one of " + Durability.allowed(), Durability.class);
        }

        @Override
        Durability parse(String text) {
            return Durability.parse(text);
        }
    }

    /** {@code bandwidthLimit}: bytes per second, such as {@code 20MiB/s} or {@code 500KB/s}. */
    static final class RateText extends TextSetting<Long> {
        RateText() {
            super(BandwidthSyntax.EXAMPLE, long.class);
        }

        @Override
        Long parse(String text) {
            return Targets.bandwidthLimit("", text);
        }
    }
}
