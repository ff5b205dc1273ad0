using System.Text.Json;
using Qwen3.Net.Generation.Constraints;

namespace Qwen3.Net.Tests.Constraints;

public class SchemaErrorTests
{
    private static SchemaException Refuse(string schema, GrammarLimits? limits = null)
    {
        Action compile = () => JsonSchemaCompiler.Compile(JsonDocument.Parse(schema).RootElement, limits ?? GrammarLimits.Default);
        return compile.Should().Throw<SchemaException>().Which;
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"a":{"type":"string","multipleOf":2}}}""", "/properties/a/multipleOf", "multipleOf")]
    [InlineData("""{"allOf":[{"type":"string"}]}""", "/allOf", "allOf")]
    [InlineData("""{"type":"object","minProperties":1}""", "/minProperties", "minProperties")]
    [InlineData("""{"type":"string","format":"hostname"}""", "/format", "hostname")]
    [InlineData("""{"type":"string","pattern":"^(?=a)b$"}""", "/pattern", "lookaround")]
    [InlineData("""{"type":"string","pattern":"^(a)\\1$"}""", "/pattern", "\\1")]
    [InlineData("""{"type":"number","minimum":0}""", "/minimum", "integer")]
    [InlineData("""{"$ref":"https://example.com/s.json"}""", "/$ref", "local")]
    [InlineData("""{"$ref":"#/$defs/missing"}""", "/$ref", "does not resolve")]
    [InlineData("""{"type":"strng"}""", "/type", "strng")]
    [InlineData("""{"type":"json_object"}""", "/type", "json_object")]
    [InlineData("""{"type":"string","pattern":"a","maxLength":3}""", "/pattern", "combining")]
    [InlineData("""{"type":"object","properties":{"a":{}},"required":["b"]}""", "/required", "'b'")]
    [InlineData("""{"type":"array","items":[{"type":"string"}]}""", "/items", "prefixItems")]
    [InlineData("""{"type":"string","minLength":"2"}""", "/minLength", "non-negative integer")]
    [InlineData("""[1]""", "", "object or a boolean")]
    public void Unsupported_or_invalid_schemas_name_the_keyword(string schema, string pointer, string fragment)
    {
        SchemaException error = Refuse(schema);
        error.Pointer.Should().Be(pointer);
        error.Message.Should().Contain(fragment);
    }

    [Theory]
    [InlineData("""{"type":"string","minLength":5,"maxLength":2}""")]
    [InlineData("""{"type":"integer","minimum":10,"maximum":2}""")]
    [InlineData("""{"type":"array","minItems":3,"maxItems":1}""")]
    [InlineData("""{"enum":[]}""")]
    [InlineData("""{"type":"integer","enum":["a"]}""")]
    [InlineData("""false""")]
    [InlineData("""{"type":"object","properties":{"a":false},"required":["a"]}""")]
    [InlineData("""{"$defs":{"x":{"type":"array","items":{"$ref":"#/$defs/x"},"minItems":1}},"$ref":"#/$defs/x"}""")]
    public void Unsatisfiable_schemas_are_refused(string schema)
    {
        SchemaException error = Refuse(schema);
        error.Message.Should().MatchRegex("nothing|no JSON value|no integer|no value");
    }

    [Fact]
    public void Text_that_is_not_utf8_is_a_schema_error_not_an_invalid_operation()
    {
        // Found by the json-schema fuzz target: JsonDocument checks UTF-8 only when a string is read.
        byte[] bytes = [.. "{\"type\":\"string\",\"minLeng"u8, 0xDC, 0xDC, .. "th\":2}"u8];
        using var document = JsonDocument.Parse(bytes);
        FluentActions.Invoking(() => JsonSchemaCompiler.Compile(document.RootElement, GrammarLimits.Default)).Should().Throw<SchemaException>().WithMessage("*UTF-8*");
        FluentActions.Invoking(() => Qwen3.Net.Generation.ResponseFormat.ForJsonSchema(document.RootElement)).Should().Throw<SchemaException>();
    }

    [Fact]
    public void Enormous_schemas_are_refused_with_the_limit()
    {
        SchemaException error = Refuse("""{"type":"array","items":{"type":"array","items":{"type":"string","maxLength":1000},"maxItems":1000},"maxItems":1000}""");
        error.Message.Should().Contain("MaxStates");
    }

    [Fact]
    public void Recursion_needing_more_depth_than_allowed_is_refused()
    {
        const string schema = """{"$defs":{"a":{"type":"array","prefixItems":[{"$ref":"#/$defs/b"}],"minItems":1},"b":{"type":"array","prefixItems":[{"type":"null"}],"minItems":1}},"$ref":"#/$defs/a"}""";
        Refuse(schema, GrammarLimits.Default with { MaxDepth = 1 }).Message.Should().Contain("MaxDepth");
        JsonSchemaCompiler.Compile(JsonDocument.Parse(schema).RootElement, GrammarLimits.Default with { MaxDepth = 2 }).Should().NotBeNull();
    }
}
