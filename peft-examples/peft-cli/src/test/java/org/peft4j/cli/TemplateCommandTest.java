package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.chat.ChatCases;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code peft4j template} prints exactly the bytes jinja2 renders for the fixture templates (the
 * reference files of peft-models), from a JSON array or JSON Lines, and says what is wrong with a
 * missing file, malformed JSON or a conversation the template refuses.
 */
class TemplateCommandTest {

    @TempDir Path tmp;

    @TestFactory
    List<DynamicTest> printsTheReferenceRender() {
        List<DynamicTest> tests = new ArrayList<>();
        for (ChatCases.Case c : ChatCases.all()) {
            // the CLI passes no extra variables; resource templates stay in peft-models' tests
            if (c.isFixture() && !c.hasVariables()) {
                tests.add(DynamicTest.dynamicTest(c.toString(), () -> check(c)));
            }
        }
        return tests;
    }

    private void check(ChatCases.Case c) throws IOException {
        Path dir = c.dir(Fixtures.root());
        Path messages = tmp.resolve(c.getMessages() + ".json");
        Files.write(messages, ChatCases.resource("chat/messages/" + c.getMessages() + ".json"));
        List<String> args =
                new ArrayList<>(
                        List.of("template", "--model", dir.toString(), "--messages",
                                messages.toString(), "--now", ChatCases.date()));
        if (c.isGenerationPrompt()) {
            args.add("--add-generation-prompt");
        }
        String[] result = CliRunner.run(args.toArray(new String[0]));
        assertEquals("0", result[0], result[2]);
        byte[] actual = result[1].getBytes(StandardCharsets.UTF_8);
        assertNull(ChatCases.firstDifference(c.expected(), actual), c.toString());
    }

    @Test
    void jsonLinesRenderAsTheArray() throws IOException {
        Path dir = Fixtures.root().resolve("tokenizers/smollm2-135m-chatml");
        Path jsonl = tmp.resolve("chat.jsonl");
        Files.writeString(jsonl,
                "{\"role\": \"user\", \"content\": \"Hi!\"}\n\n"
                        + "{\"role\": \"assistant\", \"content\": \"  Hello, how can I help?  \"}\n"
                        + "{\"role\": \"user\", \"content\": \"Tell me a joke.\"}\n");
        String[] result =
                CliRunner.run("template", "--model", dir.toString(), "--messages",
                        jsonl.toString(), "--add-generation-prompt");
        assertEquals("0", result[0], result[2]);
        byte[] expected =
                ChatCases.resource(
                        "chat/expected/smollm2-135m-chatml/multi-turn-no-system.gen.txt");
        assertNull(ChatCases.firstDifference(
                expected, result[1].getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void missingMessagesFile() throws IOException {
        Path dir = template("{{ messages | length }}");
        String error = CliRunner.error(CliRunner.run("template", "--model", dir.toString(),
                "--messages", tmp.resolve("absent.json").toString()));
        assertEquals("peft4j template: --messages " + tmp.resolve("absent.json")
                + " does not exist", error);
    }

    @Test
    void malformedJsonNamesLineAndColumn() throws IOException {
        Path dir = template("{{ messages | length }}");
        Path array = tmp.resolve("bad.json");
        Files.writeString(array,
                "[\n  {\"role\": \"user\", \"content\": \"hi\"},\n  {\"role\": }\n]");
        String error = CliRunner.error(CliRunner.run("template", "--model", dir.toString(),
                "--messages", array.toString()));
        assertTrue(error.startsWith("peft4j template: " + array + ": line 3, column 12:"
                + " malformed JSON"), error);

        Path jsonl = tmp.resolve("bad.jsonl");
        Files.writeString(jsonl, "{\"role\": \"user\", \"content\": \"hi\"}\n{\"role\" \"x\"}\n");
        String lineError = CliRunner.error(CliRunner.run("template", "--model", dir.toString(),
                "--messages", jsonl.toString()));
        assertTrue(lineError.startsWith("peft4j template: " + jsonl + ": line 2, column"),
                lineError);

        Files.writeString(jsonl, "{\"role\": \"user\", \"text\": \"hi\"}\n");
        String fieldError = CliRunner.error(CliRunner.run("template", "--model", dir.toString(),
                "--messages", jsonl.toString()));
        assertEquals("peft4j template: " + jsonl + ": line 1 needs a string \"role\" and a string"
                + " \"content\"", fieldError);
    }

    @Test
    void templateRaising() throws IOException {
        Path dir = template("{% if messages[0].role == 'system' %}"
                + "{{ raise_exception('System role not supported') }}{% endif %}ok");
        Path messages = tmp.resolve("system.json");
        Files.writeString(messages, "[{\"role\": \"system\", \"content\": \"s\"}]");
        String error = CliRunner.error(CliRunner.run("template", "--model", dir.toString(),
                "--messages", messages.toString()));
        assertEquals("peft4j template: " + dir.resolve("chat_template.jinja")
                + ": the chat template refused the conversation: System role not supported"
                + " (fix the messages to fit the model's chat format)", error);
    }

    @Test
    void directoryWithoutTemplate() throws IOException {
        Path messages = tmp.resolve("m.json");
        Files.writeString(messages, "[]");
        Path empty = Files.createDirectory(tmp.resolve("base-model"));
        String error = CliRunner.error(CliRunner.run("template", "--model", empty.toString(),
                "--messages", messages.toString()));
        assertTrue(error.startsWith("peft4j template: " + empty + " has no chat template"), error);
    }

    private Path template(String text) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("model"));
        Files.writeString(dir.resolve("chat_template.jinja"), text);
        return dir;
    }
}
