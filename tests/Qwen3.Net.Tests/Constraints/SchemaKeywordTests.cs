using System.Text;
using System.Text.Json;
using Qwen3.Net.Generation.Constraints;

namespace Qwen3.Net.Tests.Constraints;

public class SchemaKeywordTests
{
    internal static Automaton Compile(string schema) => JsonSchemaCompiler.Compile(JsonDocument.Parse(schema).RootElement, GrammarLimits.Default);

    /// <summary>Feeds the text one byte at a time, as a token stream split anywhere would.</summary>
    internal static bool Matches(Automaton automaton, string text)
    {
        var matcher = new GrammarMatcher(automaton);
        foreach (byte b in Encoding.UTF8.GetBytes(text))
        {
            if (!matcher.AcceptBytes([b]))
            {
                return false;
            }
        }

        return matcher.IsAccepting;
    }

    public static TheoryData<string, string[], string[]> Cases => new()
    {
        { """{"type":"string"}""", ["\"\"", "\"héllo\"", "\"a\\\"b\"", "\"\\u00e9\"", "\"日本\""], ["hello", "\"a", "\"a\"b\"", "\"\\x\"", "\"\\ud800\"", "\"\n\"", "\"\\u00e\""] },
        { """{"type":"string","maxLength":1}""", ["\"\\u00e9\"", "\"\\ud7ff\"", "\"日\""], ["\"\\u00e9x\"", "\"\\u00e\"", "\"日本\""] },
        { """{"type":"integer"}""", ["0", "-7", "1234567890123456"], ["01", "-0.5", "1.0", "+1", "-", "12345678901234567"] },
        { """{"type":"number"}""", ["0", "-1.5", "2e10", "3.25E-3"], ["1.", ".5", "1e", "--1", "NaN"] },
        { """{"type":"boolean"}""", ["true", "false"], ["True", "1", "null"] },
        { """{"type":"null"}""", ["null"], ["nul", "\"null\""] },
        { """{"type":["string","null"]}""", ["null", "\"x\""], ["1"] },
        { """{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"required":["b"],"additionalProperties":false}""",
            ["{\"b\":\"x\"}", "{\"a\":1,\"b\":\"x\"}", "{\"a\": 1, \"b\": \"x\"}"],
            ["{}", "{\"a\":1}", "{\"b\":\"x\",\"a\":1}", "{\"a\":1,\"b\":\"x\",\"c\":2}", "{\"a\":1 ,\"b\":\"x\"}", "{\"a\":  1,\"b\":\"x\"}"] },
        { """{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}}}""", ["{}", "{\"a\":1}", "{\"b\":2}", "{\"a\":1,\"b\":2}"], ["{,\"b\":2}", "{\"a\":1,}"] },
        { """{"type":"object","properties":{"ab":{"type":"integer"}},"additionalProperties":{"type":"boolean"}}""",
            ["{\"ab\":1,\"a\":true}", "{\"abc\":false}", "{\"x\":true,\"y\":false}", "{\"\":true}"],
            ["{\"ab\":true}", "{\"x\":1}", "{\"a\\u0062\":true}"] },
        { """{"type":"object","additionalProperties":true}""", ["{}", "{\"k\":[1,{\"z\":null}]}"], ["{\"k\"}"] },
        { """{"enum":["red",1,null,{"a":[true]}]}""", ["\"red\"", "1", "null", "{\"a\":[true]}"], ["\"blue\"", "2", "{\"a\":[false]}"] },
        { """{"type":"string","enum":["x",1]}""", ["\"x\""], ["1"] },
        { """{"const":"héllo"}""", ["\"héllo\""], ["\"hello\""] },
        { """{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3}""", ["[1]", "[1,2]", "[1, 2, 3]"], ["[]", "[1,2,3,4]", "[1,]", "[\"a\"]"] },
        { """{"type":"array","items":{"type":"integer"},"minItems":2}""", ["[1,2]", "[1,2,3,4,5,6]"], ["[1]"] },
        { """{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}""", ["[]", "[\"a\"]", "[\"a\",1]"], ["[1]", "[\"a\",1,2]"] },
        { """{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"null"}}""", ["[\"a\",null,null]"], ["[\"a\",1]"] },
        { """{"type":"array"}""", ["[]", "[1,\"a\",{}]"], ["[1 2]"] },
        { """{"type":"string","minLength":2,"maxLength":3}""", ["\"ab\"", "\"abc\"", "\"é日\"", "\"\\n\\t\""], ["\"a\"", "\"abcd\""] },
        { """{"type":"array","items":{"type":"string","minLength":1,"maxLength":3}}""", ["[\"a\",\"abc\",\"日本語\"]", "[\"abc\", \"\\u00e9\"]"], ["[\"abcd\"]", "[\"a\",\"\"]", "[\"abc\",\"abcd\"]"] },
        { """{"anyOf":[{"type":"string","maxLength":2},{"type":"string","minLength":5,"maxLength":6}]}""", ["\"\"", "\"ab\"", "\"abcde\"", "\"abcdef\""], ["\"abc\"", "\"abcd\"", "\"abcdefg\""] },
        { """{"type":"string","minLength":3,"maxLength":2000000000}""", ["\"abc\"", "\"" + new string('x', 5000) + "\""], ["\"ab\""] },
        { """{"type":"object","additionalProperties":{"type":"string","maxLength":2}}""", ["{\"a key longer than two\":\"ab\"}"], ["{\"k\":\"abc\"}"] },
        { """{"$defs":{"n":{"type":"object","properties":{"s":{"type":"string","minLength":2,"maxLength":4},"k":{"type":"array","items":{"$ref":"#/$defs/n"}}},"required":["s","k"]}},"$ref":"#/$defs/n"}""",
            ["{\"s\":\"ab\",\"k\":[{\"s\":\"abcd\",\"k\":[]}]}"], ["{\"s\":\"ab\",\"k\":[{\"s\":\"a\",\"k\":[]}]}", "{\"s\":\"abcde\",\"k\":[]}"] },
        { """{"type":"integer","minimum":-15,"maximum":123}""", ["-15", "-1", "0", "9", "10", "99", "100", "123"], ["-16", "124", "200", "-0", "0123", "1000"] },
        { """{"type":"integer","exclusiveMinimum":5,"exclusiveMaximum":10}""", ["6", "9"], ["5", "10"] },
        { """{"type":"integer","minimum":1000}""", ["1000", "99999"], ["999", "-5", "0"] },
        { """{"anyOf":[{"type":"integer"},{"type":"string","maxLength":1}]}""", ["5", "\"a\""], ["\"ab\"", "true"] },
        { """{"oneOf":[{"type":"boolean"},{"type":"null"}]}""", ["true", "null"], ["1"] },
        { """{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"]}},"$ref":"#/$defs/node"}""",
            ["{\"v\":1,\"next\":null}", "{\"v\":1,\"next\":{\"v\":2,\"next\":null}}"], ["{\"v\":1}", "{\"v\":1,\"next\":{\"v\":2}}"] },
        { """{"definitions":{"n":{"type":"integer"}},"type":"array","items":{"$ref":"#/definitions/n"}}""", ["[1,2]"], ["[\"a\"]"] },
        { """{"type":"string","format":"date"}""", ["\"2024-02-28\"", "\"1999-12-31\""], ["\"2024-02-30\"", "\"2024-13-01\"", "\"24-01-01\""] },
        { """{"type":"string","format":"date-time"}""", ["\"2024-05-06T07:08:09Z\"", "\"2024-05-06T23:59:59.123+02:00\""], ["\"2024-05-06 07:08:09Z\"", "\"2024-05-06T24:00:00Z\""] },
        { """{"type":"string","format":"uuid"}""", ["\"123e4567-e89b-12d3-a456-426614174000\""], ["\"123e4567e89b12d3a456426614174000\""] },
        { """{"type":"string","format":"email"}""", ["\"a.b@example.com\""], ["\"a@b\"", "\"@example.com\"", "\".a@example.com\""] },
        { """{"type":"string","pattern":"^[A-Z]{2}-\\d+$"}""", ["\"AB-1\"", "\"XY-123\""], ["\"A-1\"", "\"AB-\"", "\"ab-1\"", "\"xAB-1\""] },
        { """{"type":"string","pattern":"ab"}""", ["\"ab\"", "\"xaby\""], ["\"a\"", "\"ba\""] },
        { """{"type":"string","pattern":"^(?:cat|dog)s?$"}""", ["\"cat\"", "\"dogs\""], ["\"cow\"", "\"catss\""] },
        { """{"type":"string","pattern":"^[^\"]*$"}""", ["\"\"", "\"abc日\""], ["\"a\\\"\""] },
        { """{"type":"string","pattern":"^a.c$"}""", ["\"abc\"", "\"a日c\""], ["\"a\\nc\"", "\"ac\""] },
        { """{}""", ["1", "{\"a\":[]}", "\"s\""], ["{", "tru"] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Accepts_valid_and_rejects_invalid_documents(string schema, string[] accepted, string[] rejected)
    {
        Automaton automaton = Compile(schema);
        foreach (string text in accepted)
        {
            Matches(automaton, text).Should().BeTrue($"{text} is valid for {schema}");
        }

        foreach (string text in rejected)
        {
            Matches(automaton, text).Should().BeFalse($"{text} is invalid for {schema}");
        }
    }

    [Fact]
    public void Any_json_object_accepts_objects_only()
    {
        Automaton automaton = JsonSchemaCompiler.CompileAnyObject(GrammarLimits.Default);
        Matches(automaton, "{\"a\": [1, {\"b\": null}], \"c\": \"d\"}").Should().BeTrue();
        Matches(automaton, "[1]").Should().BeFalse();
        Matches(automaton, "1").Should().BeFalse();
    }

    [Fact]
    public void Recursion_stops_at_the_depth_limit_but_the_document_can_always_finish()
    {
        const string schema = """{"type":"object","properties":{"c":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},"required":["c"]}""";
        Automaton automaton = JsonSchemaCompiler.Compile(JsonDocument.Parse(schema).RootElement, GrammarLimits.Default with { MaxDepth = 2 });
        Matches(automaton, "{\"c\":{\"c\":null}}").Should().BeTrue();
        Matches(automaton, "{\"c\":{\"c\":{\"c\":{\"c\":null}}}}").Should().BeFalse("that nests deeper than MaxDepth");
        var matcher = new GrammarMatcher(automaton);
        matcher.AcceptBytes("{\"c\":{\"c\":{\"c\":"u8).Should().BeTrue();
        matcher.AcceptBytes("{"u8).Should().BeFalse("one more level would exceed the limit");
        matcher.AcceptBytes("null}}}"u8).Should().BeTrue();
        matcher.IsComplete.Should().BeTrue();
    }
}
