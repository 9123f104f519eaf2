package org.peft4j.models.chat;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The reference renders of {@code src/test/resources/chat} (written by {@code
 * src/test/python/render_chat_templates.py} with jinja2): which template renders which messages
 * with which variables, and the expected text or error message. Other modules' tests use it too.
 */
public final class ChatCases {

    private static final ObjectMapper JSON = new ObjectMapper();

    private ChatCases() {}

    /**
     * Returns every case of {@code chat/cases.json}.
     *
     * @return the cases, templates in file order
     */
    public static List<Case> all() {
        JsonNode cases = json("chat/cases.json");
        Clock clock =
                Clock.fixed(Instant.parse(cases.get("date").asText()), ZoneOffset.UTC);
        List<Case> all = new ArrayList<>();
        cases.get("templates")
                .fields()
                .forEachRemaining(
                        t -> {
                            for (JsonNode messages : cases.get("messages")) {
                                String m = messages.asText();
                                all.add(new Case(t.getKey(), t.getValue().asText(), m, m, Map.of(),
                                        clock, false));
                                all.add(new Case(t.getKey(), t.getValue().asText(), m, m, Map.of(),
                                        clock, true));
                            }
                        });
        for (JsonNode variant : cases.get("variants")) {
            Map<String, Object> variables =
                    JSON.convertValue(
                            variant.get("variables"), new TypeReference<Map<String, Object>>() {});
            for (JsonNode template : variant.get("templates")) {
                String where = cases.get("templates").get(template.asText()).asText();
                for (boolean gen : new boolean[] {false, true}) {
                    all.add(new Case(template.asText(), where, variant.get("messages").asText(),
                            variant.get("name").asText(), variables, clock, gen));
                }
            }
        }
        return all;
    }

    /**
     * Returns the fixed time of the reference renders, which {@code strftime_now} reads.
     *
     * @return an ISO instant, such as {@code 2024-09-05T08:30:00Z}
     */
    public static String date() {
        return json("chat/cases.json").get("date").asText();
    }

    /**
     * Returns the input of the feature snippets ({@code chat/features}): the messages and
     * variables of {@code cases.json}'s {@code features}, with its fixed clock.
     *
     * @return the input
     */
    public static ChatInput featureInput() {
        JsonNode cases = json("chat/cases.json");
        JsonNode features = cases.get("features");
        ChatInput.Builder builder =
                ChatInput.builder()
                        .setMessages(messages(features.get("messages").asText()))
                        .optClock(Clock.fixed(
                                Instant.parse(cases.get("date").asText()), ZoneOffset.UTC));
        Map<String, Object> variables =
                JSON.convertValue(
                        features.get("variables"), new TypeReference<Map<String, Object>>() {});
        variables.forEach(builder::optVariable);
        return builder.build();
    }

    /**
     * Reads a messages file of {@code chat/messages}.
     *
     * @param name the file name without {@code .json}
     * @return the messages
     */
    public static List<ChatMessage> messages(String name) {
        List<ChatMessage> messages = new ArrayList<>();
        for (JsonNode m : json("chat/messages/" + name + ".json")) {
            messages.add(new ChatMessage(m.get("role").asText(), m.get("content").asText()));
        }
        return messages;
    }

    /**
     * Returns the bytes of a resource, or null when it is absent.
     *
     * @param name the resource name
     * @return the bytes or null
     */
    public static byte[] resource(String name) {
        try (InputStream in = ChatCases.class.getClassLoader().getResourceAsStream(name)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Returns the path of a resource directory of this module's test classes.
     *
     * @param name the resource name
     * @return its path
     */
    public static Path resourceDir(String name) {
        URL url = ChatCases.class.getClassLoader().getResource(name);
        try {
            return Paths.get(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static JsonNode json(String name) {
        try {
            return JSON.readTree(new String(resource(name), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Returns where the first difference of two byte strings is, with a little of both around
     * it, for assertion messages.
     *
     * @param expected the expected bytes
     * @param actual the actual bytes
     * @return null if equal, else a description of the first difference
     */
    public static String firstDifference(byte[] expected, byte[] actual) {
        int n = Math.min(expected.length, actual.length);
        int at = 0;
        while (at < n && expected[at] == actual[at]) {
            at++;
        }
        if (at == n && expected.length == actual.length) {
            return null;
        }
        return "first difference at byte " + at + " (expected " + expected.length + " bytes, got "
                + actual.length + "): expected «" + around(expected, at) + "» got «"
                + around(actual, at) + "»";
    }

    private static String around(byte[] bytes, int at) {
        int from = Math.max(0, at - 20);
        int to = Math.min(bytes.length, at + 20);
        return new String(bytes, from, to - from, StandardCharsets.UTF_8)
                .replace("\n", "\\n")
                .replace("\r", "\\r");
    }

    /** One render: a template, a messages file, variables and add_generation_prompt. */
    public static final class Case {

        private final String template;
        private final String where;
        private final String messages;
        private final String name;
        private final Map<String, Object> variables;
        private final Clock clock;
        private final boolean generationPrompt;

        Case(String template, String where, String messages, String name,
                Map<String, Object> variables, Clock clock, boolean generationPrompt) {
            this.template = template;
            this.where = where;
            this.messages = messages;
            this.name = name;
            this.variables = variables;
            this.clock = clock;
            this.generationPrompt = generationPrompt;
        }

        /**
         * Tells whether the template is a shared fixture (else a test resource).
         *
         * @return whether the directory is under the fixtures
         */
        public boolean isFixture() {
            return where.startsWith("fixture:");
        }

        /**
         * Returns the model directory.
         *
         * @param fixtures the fixtures root
         * @return the directory holding the template
         */
        public Path dir(Path fixtures) {
            String rel = where.substring(where.indexOf(':') + 1);
            return isFixture() ? fixtures.resolve(rel) : resourceDir("chat/templates/" + rel);
        }

        /**
         * Returns the messages file name (without {@code .json}).
         *
         * @return the name
         */
        public String getMessages() {
            return messages;
        }

        /**
         * Returns the input to render.
         *
         * @return messages, generation prompt, variables and the fixed clock
         */
        public ChatInput input() {
            ChatInput.Builder builder =
                    ChatInput.builder()
                            .setMessages(ChatCases.messages(messages))
                            .optAddGenerationPrompt(generationPrompt)
                            .optClock(clock);
            variables.forEach(builder::optVariable);
            return builder.build();
        }

        /**
         * Tells whether the render opens the assistant's turn.
         *
         * @return add_generation_prompt
         */
        public boolean isGenerationPrompt() {
            return generationPrompt;
        }

        /**
         * Tells whether the case has extra variables (the CLI cannot pass them).
         *
         * @return whether there are variables
         */
        public boolean hasVariables() {
            return !variables.isEmpty();
        }

        /**
         * Returns the expected render, or null when the template raises.
         *
         * @return the UTF-8 bytes jinja2 rendered
         */
        public byte[] expected() {
            return resource(stem() + ".txt");
        }

        /**
         * Returns the message the template raises, or null when it renders.
         *
         * @return the message
         */
        public String expectedError() {
            byte[] error = resource(stem() + ".error.txt");
            return error == null ? null : new String(error, StandardCharsets.UTF_8);
        }

        private String stem() {
            String suffix = generationPrompt ? ".gen" : ".nogen";
            return "chat/expected/" + template + "/" + name + suffix;
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return template + " " + name + (generationPrompt ? " +gen" : "");
        }
    }
}
