package org.peft4j.models.chat;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.peft4j.core.testing.Fixtures;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Every template x messages x add_generation_prompt (and variant) renders byte for byte as jinja2
 * set up like transformers renders it ({@code src/test/resources/chat/expected}); a template that
 * raised there raises {@link ChatTemplateException} with the same message here.
 */
class ChatTemplateReferenceTest {

    @TestFactory
    List<DynamicTest> rendersAsTransformers() {
        return ChatCases.all().stream()
                .map(c -> DynamicTest.dynamicTest(c.toString(), () -> check(c)))
                .collect(Collectors.toList());
    }

    @TestFactory
    List<DynamicTest> featuresRenderAsJinja2() {
        List<DynamicTest> tests = new java.util.ArrayList<>();
        for (String name : List.of("strings", "json", "control", "strftime", "escapes")) {
            tests.add(DynamicTest.dynamicTest(name, () -> checkFeature(name)));
        }
        return tests;
    }

    private static void checkFeature(String name) {
        String text =
                new String(ChatCases.resource("chat/features/" + name + ".jinja"),
                        StandardCharsets.UTF_8);
        ChatTemplate template =
                ChatTemplate.of(Path.of("chat/features/" + name + ".jinja"), text, Map.of());
        byte[] actual =
                template.render(ChatCases.featureInput()).getBytes(StandardCharsets.UTF_8);
        byte[] expected = ChatCases.resource("chat/expected/features/" + name + ".txt");
        assertNull(ChatCases.firstDifference(expected, actual), name);
    }

    private static void check(ChatCases.Case c) {
        // resource templates run everywhere; fixture ones skip, saying why, without the fixtures
        Path fixtures = c.isFixture() ? Fixtures.root() : null;
        ChatTemplate template = ChatTemplate.fromPretrained(c.dir(fixtures));
        String error = c.expectedError();
        if (error != null) {
            ChatTemplateException e =
                    assertThrows(ChatTemplateException.class, () -> template.render(c.input()));
            assertTrue(e.getMessage().contains(error), e.getMessage());
            assertTrue(e.getMessage().contains(template.getSource().toString()), e.getMessage());
            return;
        }
        byte[] expected = c.expected();
        assertNotNull(expected, "no reference render for " + c);
        byte[] actual = template.render(c.input()).getBytes(StandardCharsets.UTF_8);
        assertNull(ChatCases.firstDifference(expected, actual), c.toString());
    }
}
