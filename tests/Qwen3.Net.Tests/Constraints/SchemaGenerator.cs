using System.Text.Json.Nodes;

namespace Qwen3.Net.Tests.Constraints;

/// <summary>Seeded random JSON Schemas over the supported keywords, sized so a random-weight model can finish a document in a few dozen tokens.</summary>
internal sealed class SchemaGenerator(int seed)
{
    private static readonly string[] Formats = ["date", "time", "date-time", "uuid", "email"];
    private static readonly string[] Patterns = ["^[a-z]{1,4}$", "^[A-Z][0-9]{2}$", "^(yes|no)$", "^\\d{3}-\\d{2}$", "^x+$"];

    private readonly Random _random = new(seed);

    /// <summary>Hand-written schemas, one or more per supported keyword.</summary>
    public static IReadOnlyList<string> HandWritten { get; } =
    [
        """{"type":"boolean"}""",
        """{"type":"null"}""",
        """{"type":"integer","minimum":-20,"maximum":300}""",
        """{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10}""",
        """{"type":"number"}""",
        """{"type":"string","maxLength":6}""",
        """{"type":"string","minLength":2,"maxLength":3}""",
        """{"type":["string","null"],"maxLength":4}""",
        """{"enum":["red","green",3,null,{"a":[1,2]}]}""",
        """{"const":{"k":"v","n":[true,false]}}""",
        """{"type":"string","format":"date"}""",
        """{"type":"string","format":"time"}""",
        """{"type":"string","format":"date-time"}""",
        """{"type":"string","format":"uuid"}""",
        """{"type":"string","format":"email"}""",
        """{"type":"string","pattern":"^[a-c]{2,3}(-[0-9])?$"}""",
        """{"type":"array","items":{"type":"integer","minimum":0,"maximum":9},"minItems":1,"maxItems":3}""",
        """{"type":"array","prefixItems":[{"type":"boolean"},{"const":"x"}],"items":false}""",
        """{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"}},"required":["a"],"additionalProperties":false}""",
        """{"type":"object","properties":{"k":{"const":1}},"required":["k"],"additionalProperties":{"type":"boolean"}}""",
        """{"type":"object","properties":{},"additionalProperties":false}""",
        """{"anyOf":[{"type":"integer","minimum":0,"maximum":5},{"type":"boolean"}]}""",
        """{"oneOf":[{"type":"null"},{"type":"string","maxLength":2}]}""",
        """{"$defs":{"n":{"type":"object","properties":{"v":{"type":"integer","minimum":0,"maximum":9},"next":{"anyOf":[{"$ref":"#/$defs/n"},{"type":"null"}]}},"required":["v","next"],"additionalProperties":false}},"$ref":"#/$defs/n"}""",
        """{"definitions":{"b":{"type":"boolean"}},"type":"array","items":{"$ref":"#/definitions/b"},"maxItems":4}""",
        """{"title":"t","description":"d","type":"object","properties":{"id":{"type":"string","format":"uuid","description":"x"}},"required":["id"]}""",
        """{"type":"object","properties":{"name":{"type":"string","maxLength":5},"age":{"type":"integer","minimum":0,"maximum":120},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":2}},"required":["name","age","tags"]}""",
    ];

    public string Next() => Schema(0).ToJsonString();

    private JsonObject Schema(int depth)
    {
        int pick = _random.Next(depth >= 2 ? 8 : 11);
        switch (pick)
        {
            case 0:
                return new JsonObject { ["type"] = "boolean" };
            case 1:
                int lo = _random.Next(-50, 50);
                return new JsonObject { ["type"] = "integer", ["minimum"] = lo, ["maximum"] = lo + _random.Next(0, 500) };
            case 2:
                var s = new JsonObject { ["type"] = "string", ["maxLength"] = _random.Next(0, 6) };
                if (_random.Next(2) == 0)
                {
                    s["minLength"] = _random.Next(0, (int)s["maxLength"]! + 1);
                }

                return s;
            case 3:
                return new JsonObject { ["type"] = "string", ["format"] = Formats[_random.Next(Formats.Length)] };
            case 4:
                return new JsonObject { ["type"] = "string", ["pattern"] = Patterns[_random.Next(Patterns.Length)] };
            case 5:
                // One value of each kind at most, so the enum never repeats a value.
                var values = new JsonArray();
                JsonNode?[] kinds = [JsonValue.Create(_random.Next(100)), JsonValue.Create("v" + _random.Next(10)), null];
                foreach (var value in kinds.Take(_random.Next(1, 4)))
                {
                    values.Add(value);
                }

                return new JsonObject { ["enum"] = values };
            case 6:
                return new JsonObject { ["type"] = "null" };
            case 7:
                return new JsonObject { ["type"] = new JsonArray("boolean", "null") };
            case 8:
                return new JsonObject { ["type"] = "array", ["items"] = Schema(depth + 1), ["maxItems"] = _random.Next(0, 4) };
            case 9:
                return new JsonObject { ["anyOf"] = new JsonArray(Schema(depth + 1), Schema(depth + 1)) };
            default:
                var properties = new JsonObject();
                var required = new JsonArray();
                for (int i = _random.Next(1, 4); i > 0; i--)
                {
                    string name = "p" + properties.Count;
                    properties[name] = Schema(depth + 1);
                    if (_random.Next(2) == 0)
                    {
                        required.Add(name);
                    }
                }

                return new JsonObject { ["type"] = "object", ["properties"] = properties, ["required"] = required, ["additionalProperties"] = false };
        }
    }
}
