package io.tidemark.format;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.SerializerProvider;
import com.fasterxml.jackson.databind.deser.std.StdDeserializer;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.StdSerializer;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.DiskEntry;
import java.io.IOException;
import java.util.Arrays;
import java.util.function.Function;

/** The one JSON configuration for manifests, config and events: ISO-8601 times, tolerant readers. */
public final class Json {

    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .addModule(new JavaTimeModule())
            .addModule(new Jdk8Module())
            .addModule(new SimpleModule("tidemark-open-enums")
                    .addDeserializer(FailureReason.class, new OpenEnumDeserializer<>(FailureReason.class)))
            .addModule(domainValues())
            .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
            // a newer writer of the same major format version may add fields: ignore them
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_CREATOR_PROPERTIES)
            .build();

    private Json() {}

    public static ObjectMapper mapper() {
        return MAPPER;
    }

    /**
     * The domain values that are types in code and strings on the wire, with the spellings the
     * formats have always used (ADR 0010); the domain types carry no Jackson annotations. What a
     * reader does with a spelling it does not know: a {@link ConsistencyPolicy} reads as absent
     * (so a job means crash-consistent, as before the type existed), a {@link ConsistencyAchieved}
     * as {@link ConsistencyAchieved#CRASH} (every capture is at least that, so the point is
     * under-claimed, never over-claimed), a {@link TriggerKind} is kept as it is, a disk's full
     * reason kind reads as {@code UNRECORDED} with its words kept ({@link DiskEntryJson}).
     */
    private static SimpleModule domainValues() {
        return new SimpleModule("tidemark-domain-values")
                .addSerializer(
                        ConsistencyPolicy.class,
                        new SpellingSerializer<>(ConsistencyPolicy.class, ConsistencyPolicy::spelling))
                .addDeserializer(
                        ConsistencyPolicy.class,
                        new SpellingDeserializer<>(ConsistencyPolicy.class, s -> ConsistencyPolicy.fromSpelling(s)
                                .orElse(null)))
                .addSerializer(
                        ConsistencyAchieved.class,
                        new SpellingSerializer<>(ConsistencyAchieved.class, ConsistencyAchieved::spelling))
                .addDeserializer(
                        ConsistencyAchieved.class,
                        new SpellingDeserializer<>(ConsistencyAchieved.class, s -> ConsistencyAchieved.fromSpelling(s)
                                .orElse(ConsistencyAchieved.CRASH)))
                .addSerializer(TriggerKind.class, new SpellingSerializer<>(TriggerKind.class, TriggerKind::spelling))
                .addDeserializer(TriggerKind.class, new SpellingDeserializer<>(TriggerKind.class, TriggerKind::new))
                .addSerializer(DiskEntry.class, new DiskEntrySerializer())
                .addDeserializer(DiskEntry.class, new DiskEntryDeserializer());
    }

    /** Writes a manifest's disk through {@link DiskEntryJson}: its full reason as two fields. */
    private static final class DiskEntrySerializer extends StdSerializer<DiskEntry> {
        private static final long serialVersionUID = 1L;

        DiskEntrySerializer() {
            super(DiskEntry.class);
        }

        @Override
        public void serialize(DiskEntry value, JsonGenerator gen, SerializerProvider provider) throws IOException {
            provider.defaultSerializeValue(DiskEntryJson.of(value), gen);
        }
    }

    /** Reads a manifest's disk through {@link DiskEntryJson}, with the same rules as any record. */
    private static final class DiskEntryDeserializer extends StdDeserializer<DiskEntry> {
        private static final long serialVersionUID = 1L;

        DiskEntryDeserializer() {
            super(DiskEntry.class);
        }

        @Override
        public DiskEntry deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            return ctxt.readValue(p, DiskEntryJson.class).toDiskEntry();
        }
    }

    /** Writes a domain value as its spelling. */
    private static final class SpellingSerializer<T> extends StdSerializer<T> {
        private static final long serialVersionUID = 1L;
        private final transient Function<T, String> spelling;

        SpellingSerializer(Class<T> type, Function<T, String> spelling) {
            super(type);
            this.spelling = spelling;
        }

        @Override
        public void serialize(T value, JsonGenerator gen, SerializerProvider provider) throws IOException {
            gen.writeString(spelling.apply(value));
        }
    }

    /** Reads a domain value from its spelling; {@code parse} decides what an unknown spelling means. */
    private static final class SpellingDeserializer<T> extends StdDeserializer<T> {
        private static final long serialVersionUID = 1L;
        private final transient Function<String, T> parse;

        SpellingDeserializer(Class<T> type, Function<String, T> parse) {
            super(type);
            this.parse = parse;
        }

        @Override
        public T deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            String spelling = p.getValueAsString();
            if (spelling == null) {
                return ctxt.reportInputMismatch(
                        this, "expected a string for %s", handledType().getSimpleName());
            }
            try {
                return parse.apply(spelling);
            } catch (IllegalArgumentException e) {
                return ctxt.reportInputMismatch(
                        this,
                        "%s is not a valid %s: %s",
                        spelling,
                        handledType().getSimpleName(),
                        e.getMessage());
            }
        }
    }

    /**
     * An enum a newer writer may extend within the same format version: a constant this reader
     * does not know reads as absent (null, or an empty {@code Optional}) instead of failing the
     * whole record.
     */
    private static final class OpenEnumDeserializer<E extends Enum<E>> extends StdDeserializer<E> {
        private static final long serialVersionUID = 1L;
        private final Class<E> type;

        OpenEnumDeserializer(Class<E> type) {
            super(type);
            this.type = type;
        }

        @Override
        public E deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            String name = p.getValueAsString();
            return Arrays.stream(type.getEnumConstants())
                    .filter(c -> c.name().equals(name))
                    .findFirst()
                    .orElse(null);
        }
    }
}
