using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Qwen3.Net.Generation.Constraints;

/// <summary>Compiles a JSON Schema into a byte-level <see cref="Automaton"/> whose language is compact JSON that validates against it.</summary>
/// <remarks>See docs/structured-output.md for the supported keywords and the whitespace and property-order rules.</remarks>
internal sealed class JsonSchemaCompiler
{
    private static readonly HashSet<string> Annotations =
    [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly", "$defs", "definitions",
    ];

    private static readonly HashSet<string> Supported =
    [
        "type", "properties", "required", "additionalProperties", "enum", "const", "items", "prefixItems", "minItems", "maxItems",
        "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf", "oneOf", "$ref", "format", "pattern",
    ];

    private static readonly string[] TypeNames = ["object", "array", "string", "number", "integer", "boolean", "null"];

    private static readonly Dictionary<string, string> Formats = new()
    {
        ["date"] = DatePattern,
        ["time"] = TimePattern,
        ["date-time"] = DatePattern + "T" + TimePattern,
        ["uuid"] = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        ["email"] = "[A-Za-z0-9](?:[A-Za-z0-9_+-]{0,30}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9_+-]{0,14}[A-Za-z0-9])?)?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?\\.){1,3}[A-Za-z]{2,10}",
    };

    // February stops at 28 so every generated date exists in every year.
    private const string DatePattern = "[1-9][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))";
    private const string TimePattern = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";

    private static readonly JsonWriterOptions CompactWriter = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false };

    private static readonly JsonElement TrueSchema = JsonDocument.Parse("true").RootElement.Clone();

    private readonly AutomatonBuilder _b;
    private readonly Dictionary<string, int> _refRules = new(StringComparer.Ordinal);
    private readonly Queue<(int Rule, JsonElement Schema, string Pointer, JsonElement Root, int RootId)> _pendingRules = new();
    private readonly GrammarLimits _limits;
    private readonly int _documentRule;
    private JsonElement _root;
    private int _rootId;
    private int _anyValueRule = -1;

    private JsonSchemaCompiler(GrammarLimits limits)
    {
        _limits = limits;
        _b = new AutomatonBuilder(limits.MaxStates);

        // The matcher starts in rule 0, so the document rule is created first.
        _documentRule = _b.NewRule();
    }

    /// <summary>Compiles <paramref name="schema"/>; the automaton's rule 0 is the whole document.</summary>
    /// <param name="schema">The JSON Schema document.</param>
    /// <param name="limits">Size limits.</param>
    /// <param name="leadingNewlines">Allow up to two newlines before the document, as a model writes after <c>&lt;/think&gt;</c>.</param>
    /// <exception cref="SchemaException">The schema is invalid, unsupported, unsatisfiable, or too large.</exception>
    public static Automaton Compile(JsonElement schema, GrammarLimits limits, bool leadingNewlines = false)
    {
        ThrowIfNotUtf8(schema);
        var compiler = new JsonSchemaCompiler(limits) { _root = schema };
        return compiler.Finish(compiler.Schema(schema, ""), leadingNewlines);
    }

    /// <summary>Any JSON object (OpenAI's <c>{"type":"json_object"}</c> response format).</summary>
    public static Automaton CompileAnyObject(GrammarLimits limits, bool leadingNewlines = false)
    {
        var compiler = new JsonSchemaCompiler(limits);
        return compiler.Finish(compiler.AnyObject(), leadingNewlines);
    }

    /// <summary>
    /// One or more tool calls as the Qwen3 template renders them:
    /// <c>&lt;tool_call&gt;\n{"name": NAME, "arguments": ARGS}\n&lt;/tool_call&gt;</c>, calls separated by a newline.
    /// </summary>
    /// <param name="tools">Each allowed tool's name and parameters schema (each its own document for <c>$ref</c>).</param>
    /// <param name="parallel">Allow more than one call.</param>
    /// <param name="open">The byte standing for the <c>&lt;tool_call&gt;</c> token in the vocabulary used with this automaton.</param>
    /// <param name="close">The byte standing for <c>&lt;/tool_call&gt;</c>.</param>
    /// <param name="limits">Size limits.</param>
    /// <param name="leadingNewlines">Allow up to two newlines before the first call.</param>
    /// <exception cref="SchemaException">A parameters schema is invalid, unsupported, unsatisfiable, or too large; the message names the tool.</exception>
    public static Automaton CompileToolCalls(
        IReadOnlyList<(string Name, JsonElement Parameters)> tools, bool parallel, byte open, byte close, GrammarLimits limits, bool leadingNewlines = false)
    {
        ArgumentOutOfRangeException.ThrowIfZero(tools.Count, nameof(tools));
        var compiler = new JsonSchemaCompiler(limits);
        var b = compiler._b;
        var calls = new List<Fragment>();
        for (int i = 0; i < tools.Count; i++)
        {
            (string name, JsonElement parameters) = tools[i];
            Fragment arguments;
            try
            {
                ThrowIfNotUtf8(parameters);
                arguments = compiler.Body(parameters, i + 1);
                compiler.DrainRules();
            }
            catch (SchemaException e)
            {
                throw e.InContext($"the parameters of tool '{name}'");
            }

            // The template writes the name and arguments with ", " and ": " separators; compact spellings are accepted too.
            calls.Add(b.Seq(
                b.Literal("{\"name\":"), compiler.OptionalSpace(), b.Literal(KeyBytes(name)), b.Literal(","), compiler.OptionalSpace(),
                b.Literal("\"arguments\":"), compiler.OptionalSpace(), arguments, b.Literal("}")));
        }

        int callRule = b.NewRule();
        b.DefineRule(callRule, b.Seq(b.Literal([open]), b.Literal("\n"), b.Alt(calls), b.Literal("\n"), b.Literal([close])));
        Fragment body = b.Call(callRule);
        if (parallel)
        {
            body = b.Seq(body, b.Star(b.Seq(b.Literal("\n"), b.Call(callRule))));
        }

        return compiler.Finish(body, leadingNewlines);
    }

    /// <summary>A JsonDocument checks UTF-8 only when a string is read, so invalid text would otherwise escape from deep inside the compiler.</summary>
    internal static void ThrowIfNotUtf8(JsonElement schema)
    {
        try
        {
            Chat.JsonUtf8.ThrowIfInvalid(schema, nameof(schema));
        }
        catch (ArgumentException e)
        {
            throw new SchemaException("", e.Message);
        }
    }

    /// <summary>A rule for a schema document of its own (its <c>$ref</c>s resolve inside it), called where it is used.</summary>
    private Fragment Body(JsonElement schema, int rootId)
    {
        int rule = _b.NewRule();
        _pendingRules.Enqueue((rule, schema, "", schema, rootId));
        return _b.Call(rule);
    }

    private Automaton Finish(Fragment body, bool leadingNewlines)
    {
        _b.DefineRule(_documentRule, leadingNewlines ? _b.Seq(_b.Repeat(() => _b.Literal("\n"), 0, 2), body) : body);
        DrainRules();
        return _b.Build(_documentRule, _limits.MaxDepth, _limits.MaxStates * 8);
    }

    private void DrainRules()
    {
        while (_pendingRules.TryDequeue(out var pending))
        {
            _root = pending.Root;
            _rootId = pending.RootId;
            _b.DefineRule(pending.Rule, Schema(pending.Schema, pending.Pointer));
        }
    }

    private static SchemaException Invalid(string pointer, string message) => new(pointer, message);

    private static string Escape(string token) => token.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private Fragment Schema(JsonElement s, string ptr)
    {
        _b.CurrentPointer = ptr;
        if (s.ValueKind == JsonValueKind.True)
        {
            return AnyValue();
        }

        if (s.ValueKind == JsonValueKind.False)
        {
            return _b.Nothing();
        }

        if (s.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(ptr, $"a schema must be an object or a boolean, not {s.ValueKind}.");
        }

        var constraints = new List<string>();
        foreach (JsonProperty p in s.EnumerateObject())
        {
            if (Supported.Contains(p.Name))
            {
                constraints.Add(p.Name);
            }
            else if (!Annotations.Contains(p.Name))
            {
                throw Invalid(ptr + "/" + Escape(p.Name), $"the keyword '{p.Name}' is not supported for constrained decoding.");
            }
        }

        if (s.TryGetProperty("$ref", out JsonElement reference))
        {
            RequireAlone(constraints, "$ref", ptr);
            return _b.Call(RefRule(reference, ptr + "/$ref"));
        }

        foreach (string combinator in (string[])["anyOf", "oneOf"])
        {
            if (s.TryGetProperty(combinator, out JsonElement options))
            {
                RequireAlone(constraints, combinator, ptr);
                if (options.ValueKind != JsonValueKind.Array || options.GetArrayLength() == 0)
                {
                    throw Invalid(ptr + "/" + combinator, $"'{combinator}' must be a non-empty array of schemas.");
                }

                // oneOf is compiled like anyOf: docs/structured-output.md says so, because exclusivity is not checked.
                var fragments = new List<Fragment>();
                int i = 0;
                foreach (JsonElement option in options.EnumerateArray())
                {
                    fragments.Add(Schema(option, $"{ptr}/{combinator}/{i++}"));
                }

                return _b.Alt(fragments);
            }
        }

        if (constraints.Count == 0)
        {
            return AnyValue();
        }

        List<string> types = Types(s, ptr);
        if (s.TryGetProperty("const", out JsonElement constant))
        {
            return Literals([constant], types, ptr + "/const");
        }

        if (s.TryGetProperty("enum", out JsonElement values))
        {
            if (values.ValueKind != JsonValueKind.Array)
            {
                throw Invalid(ptr + "/enum", "'enum' must be an array.");
            }

            return Literals([.. values.EnumerateArray()], types, ptr + "/enum");
        }

        var alternatives = new List<Fragment>();
        foreach (string type in types)
        {
            _b.CurrentPointer = ptr;
            alternatives.Add(type switch
            {
                "object" => Object(s, ptr),
                "array" => Array(s, ptr),
                "string" => String(s, ptr),
                "number" => Number(s, ptr),
                "integer" => Integer(s, ptr),
                "boolean" => _b.Alt([_b.Literal("true"), _b.Literal("false")]),
                _ => _b.Literal("null"),
            });
        }

        return alternatives.Count == 1 ? alternatives[0] : _b.Alt(alternatives);
    }

    private static void RequireAlone(List<string> constraints, string keyword, string ptr)
    {
        foreach (string other in constraints)
        {
            if (other != keyword)
            {
                throw Invalid(ptr + "/" + other, $"'{other}' beside '{keyword}' is not supported; move it into the referenced or combined schemas.");
            }
        }
    }

    /// <summary>The declared types, or the ones implied by type-specific keywords, or all of them.</summary>
    private static List<string> Types(JsonElement s, string ptr)
    {
        if (s.TryGetProperty("type", out JsonElement type))
        {
            var list = new List<string>();
            if (type.ValueKind == JsonValueKind.String)
            {
                list.Add(type.GetString()!);
            }
            else if (type.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement t in type.EnumerateArray())
                {
                    list.Add(t.ValueKind == JsonValueKind.String ? t.GetString()! : throw Invalid(ptr + "/type", "'type' entries must be strings."));
                }
            }
            else
            {
                throw Invalid(ptr + "/type", "'type' must be a string or an array of strings.");
            }

            foreach (string t in list)
            {
                if (System.Array.IndexOf(TypeNames, t) < 0)
                {
                    throw Invalid(ptr + "/type", $"unknown type '{t}'" + (t == "json_object" ? "; use StructuredOutput's any-object grammar for response_format json_object." : "."));
                }
            }

            return list.Count > 0 ? list : throw Invalid(ptr + "/type", "'type' must not be empty.");
        }

        bool Has(params string[] keys) => keys.Any(k => s.TryGetProperty(k, out _));
        if (Has("properties", "required", "additionalProperties"))
        {
            return ["object"];
        }

        if (Has("items", "prefixItems", "minItems", "maxItems"))
        {
            return ["array"];
        }

        if (Has("minLength", "maxLength", "pattern", "format"))
        {
            return ["string"];
        }

        if (Has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))
        {
            return ["number"];
        }

        return [.. TypeNames];
    }

    private Fragment Literals(List<JsonElement> values, List<string> types, string ptr)
    {
        var fragments = new List<Fragment>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonElement value in values)
        {
            if (!types.Contains(TypeOf(value)) && !(types.Contains("number") && TypeOf(value) == "integer"))
            {
                continue;
            }

            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer, CompactWriter))
            {
                value.WriteTo(writer);
            }

            if (seen.Add(Encoding.UTF8.GetString(buffer.WrittenSpan)))
            {
                fragments.Add(_b.Literal(buffer.WrittenSpan));
            }
        }

        return fragments.Count == 0 ? throw Invalid(ptr, "no value of 'enum'/'const' has the schema's type, so nothing is accepted.") : _b.Alt(fragments);
    }

    private static string TypeOf(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => value.TryGetInt64(out _) || (value.TryGetDecimal(out decimal d) && d == decimal.Truncate(d)) ? "integer" : "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };

    private int RefRule(JsonElement reference, string ptr)
    {
        if (reference.ValueKind != JsonValueKind.String)
        {
            throw Invalid(ptr, "'$ref' must be a string.");
        }

        string target = reference.GetString()!;
        string key = _rootId.ToString(System.Globalization.CultureInfo.InvariantCulture) + target;
        if (_refRules.TryGetValue(key, out int rule))
        {
            return rule;
        }

        if (target != "#" && !target.StartsWith("#/", StringComparison.Ordinal))
        {
            throw Invalid(ptr, $"'$ref' '{target}' is not supported: only local references such as '#/$defs/Name' are.");
        }

        JsonElement resolved = _root;
        string[] tokens = target.Length <= 2 ? [] : target[2..].Split('/');
        foreach (string raw in tokens)
        {
            string token = Uri.UnescapeDataString(raw).Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (resolved.ValueKind == JsonValueKind.Object && resolved.TryGetProperty(token, out JsonElement next))
            {
                resolved = next;
            }
            else if (resolved.ValueKind == JsonValueKind.Array && int.TryParse(token, out int index) && index >= 0 && index < resolved.GetArrayLength())
            {
                resolved = resolved[index];
            }
            else
            {
                throw Invalid(ptr, $"'$ref' '{target}' does not resolve inside the schema.");
            }
        }

        rule = _b.NewRule();
        _refRules.Add(key, rule);
        _pendingRules.Enqueue((rule, resolved, target.Length <= 1 ? "" : target[1..], _root, _rootId));
        return rule;
    }

    private static int ReadCount(JsonElement s, string keyword, string ptr, int fallback)
    {
        if (!s.TryGetProperty(keyword, out JsonElement value))
        {
            return fallback;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long n) || n < 0)
        {
            throw Invalid(ptr + "/" + keyword, $"'{keyword}' must be a non-negative integer.");
        }

        return (int)Math.Min(n, int.MaxValue);
    }

    private Fragment OptionalSpace() => _b.Optional(_b.Literal(" "));

    private Fragment String(JsonElement s, string ptr)
    {
        int min = ReadCount(s, "minLength", ptr, 0);
        int max = ReadCount(s, "maxLength", ptr, -1);
        bool hasPattern = s.TryGetProperty("pattern", out JsonElement pattern);
        bool hasFormat = s.TryGetProperty("format", out JsonElement format);
        if (max >= 0 && min > max)
        {
            throw Invalid(ptr + "/minLength", $"minLength {min} is greater than maxLength {max}, so nothing is accepted.");
        }

        if ((hasPattern || hasFormat) && (min > 0 || max >= 0 || (hasPattern && hasFormat)))
        {
            throw Invalid(ptr + (hasFormat ? "/format" : "/pattern"), "combining 'pattern', 'format', 'minLength' and 'maxLength' is not supported; use one of them.");
        }

        if (hasFormat)
        {
            string name = format.ValueKind == JsonValueKind.String ? format.GetString()! : throw Invalid(ptr + "/format", "'format' must be a string.");
            return Formats.TryGetValue(name, out string? regex)
                ? JsonLexicon.Quoted(_b, PatternCompiler.Compile(_b, "^" + regex + "$", ptr + "/format"))
                : throw Invalid(ptr + "/format", $"the format '{name}' is not supported (supported: {string.Join(", ", Formats.Keys)}).");
        }

        if (hasPattern)
        {
            string regex = pattern.ValueKind == JsonValueKind.String ? pattern.GetString()! : throw Invalid(ptr + "/pattern", "'pattern' must be a string.");
            return JsonLexicon.Quoted(_b, PatternCompiler.Compile(_b, regex, ptr + "/pattern"));
        }

        return JsonLexicon.String(_b, min, max);
    }

    private Fragment Number(JsonElement s, string ptr)
    {
        foreach (string keyword in (string[])["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"])
        {
            if (s.TryGetProperty(keyword, out _))
            {
                throw Invalid(ptr + "/" + keyword, $"'{keyword}' is supported for type 'integer' only, not 'number'.");
            }
        }

        return JsonLexicon.Number(_b);
    }

    private Fragment Integer(JsonElement s, string ptr)
    {
        long limit = (long)Math.Pow(10, JsonLexicon.MaxIntegerDigits) - 1;
        long lo = -limit;
        long hi = limit;
        bool bounded = false;
        foreach ((string keyword, bool lower, bool exclusive) in new[] { ("minimum", true, false), ("exclusiveMinimum", true, true), ("maximum", false, false), ("exclusiveMaximum", false, true) })
        {
            if (!s.TryGetProperty(keyword, out JsonElement value))
            {
                continue;
            }

            if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double bound))
            {
                throw Invalid(ptr + "/" + keyword, $"'{keyword}' must be a number.");
            }

            bounded = true;
            double rounded = lower ? (exclusive ? Math.Floor(bound) + 1 : Math.Ceiling(bound)) : (exclusive ? Math.Ceiling(bound) - 1 : Math.Floor(bound));
            long clamped = (long)Math.Clamp(rounded, -limit, limit);
            if (lower)
            {
                lo = Math.Max(lo, clamped);
            }
            else
            {
                hi = Math.Min(hi, clamped);
            }
        }

        if (lo > hi)
        {
            throw Invalid(ptr, $"no integer lies between the minimum and maximum ({lo} > {hi}).");
        }

        return bounded ? JsonLexicon.IntegerRange(_b, lo, hi) : JsonLexicon.Integer(_b);
    }

    private Fragment Array(JsonElement s, string ptr)
    {
        var prefix = new List<(JsonElement Schema, string Pointer)>();
        if (s.TryGetProperty("prefixItems", out JsonElement prefixItems))
        {
            if (prefixItems.ValueKind != JsonValueKind.Array)
            {
                throw Invalid(ptr + "/prefixItems", "'prefixItems' must be an array of schemas.");
            }

            int i = 0;
            foreach (JsonElement item in prefixItems.EnumerateArray())
            {
                prefix.Add((item, $"{ptr}/prefixItems/{i++}"));
            }
        }

        bool hasItems = s.TryGetProperty("items", out JsonElement items);
        if (hasItems && items.ValueKind == JsonValueKind.Array)
        {
            throw Invalid(ptr + "/items", "array-form 'items' (draft 4-7 tuples) is not supported; use 'prefixItems'.");
        }

        int min = ReadCount(s, "minItems", ptr, 0);
        int max = ReadCount(s, "maxItems", ptr, -1);
        if (hasItems && items.ValueKind == JsonValueKind.False)
        {
            max = max < 0 ? prefix.Count : Math.Min(max, prefix.Count);
        }

        if (max >= 0 && min > max)
        {
            throw Invalid(ptr + "/minItems", $"minItems {min} is greater than the number of items allowed ({max}), so nothing is accepted.");
        }

        Fragment Element(int index) => index < prefix.Count
            ? Schema(prefix[index].Schema, prefix[index].Pointer)
            : hasItems ? Schema(items, ptr + "/items") : AnyValue();

        int close = _b.NewState();
        int open = _b.NewState();
        Fragment start = _b.Literal("[");
        _b.Epsilon(start.End, open);
        if (min == 0)
        {
            _b.Epsilon(open, close);
        }

        if (max != 0)
        {
            Fragment first = Element(0);
            _b.Epsilon(open, first.Start);
            int after = first.End;
            int unrolled = Math.Max(prefix.Count, min);
            for (int i = 1; max < 0 || i < max; i++)
            {
                if (i >= min)
                {
                    _b.Epsilon(after, close);
                }

                if (max < 0 && i >= unrolled)
                {
                    // Past the prefix and the minimum, further items loop on one copy of the items schema.
                    Fragment loop = _b.Seq(_b.Literal(","), OptionalSpace(), Element(i));
                    _b.Epsilon(after, loop.Start);
                    _b.Epsilon(loop.End, after);
                    break;
                }

                Fragment next = _b.Seq(_b.Literal(","), OptionalSpace(), Element(i));
                _b.Epsilon(after, next.Start);
                after = next.End;
            }

            if (max >= 0)
            {
                _b.Epsilon(after, close);
            }
        }

        Fragment end = _b.Literal("]");
        _b.Epsilon(close, end.Start);
        return new Fragment(start.Start, end.End);
    }

    private Fragment Object(JsonElement s, string ptr)
    {
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (s.TryGetProperty("required", out JsonElement requiredList))
        {
            if (requiredList.ValueKind != JsonValueKind.Array)
            {
                throw Invalid(ptr + "/required", "'required' must be an array of strings.");
            }

            foreach (JsonElement name in requiredList.EnumerateArray())
            {
                required.Add(name.ValueKind == JsonValueKind.String ? name.GetString()! : throw Invalid(ptr + "/required", "'required' must be an array of strings."));
            }
        }

        var properties = new List<(string Name, JsonElement Schema)>();
        if (s.TryGetProperty("properties", out JsonElement props))
        {
            if (props.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(ptr + "/properties", "'properties' must be an object.");
            }

            foreach (JsonProperty p in props.EnumerateObject())
            {
                properties.Add((p.Name, p.Value));
            }
        }

        foreach (string name in required)
        {
            if (!properties.Exists(p => p.Name == name))
            {
                throw Invalid(ptr + "/required", $"the required property '{name}' is not declared in 'properties', which is not supported.");
            }
        }

        // Beside 'properties', an absent additionalProperties is compiled as false: outputs still validate, and models do not invent keys.
        JsonElement additional = s.TryGetProperty("additionalProperties", out JsonElement a) ? a
            : properties.Count == 0 ? TrueSchema : default;
        if (additional.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.True or JsonValueKind.False or JsonValueKind.Object))
        {
            throw Invalid(ptr + "/additionalProperties", "'additionalProperties' must be a boolean or a schema.");
        }

        Fragment open = _b.Literal("{");

        // Two lanes: 'empty' (nothing written yet, so no comma) and 'some'; every value fragment is shared by both.
        int empty = open.End;
        int some = _b.NewState();
        foreach ((string name, JsonElement schema) in properties)
        {
            string propertyPtr = ptr + "/properties/" + Escape(name);
            byte[] key = KeyBytes(name);
            Fragment value = Schema(schema, propertyPtr);
            int nextEmpty = _b.NewState();
            int nextSome = _b.NewState();
            Fragment fromEmpty = _b.Seq(_b.Literal(key), _b.Literal(":"), OptionalSpace());
            Fragment fromSome = _b.Seq(_b.Literal(","), OptionalSpace(), _b.Literal(key), _b.Literal(":"), OptionalSpace());
            _b.Epsilon(empty, fromEmpty.Start);
            _b.Epsilon(some, fromSome.Start);
            _b.Epsilon(fromEmpty.End, value.Start);
            _b.Epsilon(fromSome.End, value.Start);
            _b.Epsilon(value.End, nextSome);
            if (!required.Contains(name))
            {
                _b.Epsilon(empty, nextEmpty);
                _b.Epsilon(some, nextSome);
            }

            empty = nextEmpty;
            some = nextSome;
        }

        if (additional.ValueKind is JsonValueKind.True or JsonValueKind.Object)
        {
            Fragment value = additional.ValueKind == JsonValueKind.True ? AnyValue() : Schema(additional, ptr + "/additionalProperties");
            Fragment pair = _b.Seq(KeyNotIn(properties.ConvertAll(p => p.Name), ptr + "/additionalProperties"), _b.Literal(":"), OptionalSpace(), value);
            Fragment comma = _b.Seq(_b.Literal(","), OptionalSpace());
            _b.Epsilon(empty, pair.Start);
            _b.Epsilon(some, comma.Start);
            _b.Epsilon(comma.End, pair.Start);
            _b.Epsilon(pair.End, some);
        }

        Fragment close = _b.Literal("}");
        _b.Epsilon(empty, close.Start);
        _b.Epsilon(some, close.Start);
        return new Fragment(open.Start, close.End);
    }

    private static byte[] KeyBytes(string name)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, CompactWriter))
        {
            writer.WriteStringValue(name);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>A quoted key that differs from every declared name: a trie of the names whose off-trie characters lead to free text.</summary>
    /// <remarks>Keys use no escape sequences, so an escaped spelling can never collide with a declared name.</remarks>
    private Fragment KeyNotIn(List<string> names, string ptr)
    {
        foreach (string name in names)
        {
            foreach (char c in name)
            {
                if (c < 0x20 || c > 0x7E || c == '"' || c == '\\')
                {
                    throw Invalid(ptr, $"additional properties beside a declared property name with non-ASCII, control, quote or backslash characters ('{name}') are not supported.");
                }
            }
        }

        Fragment quote = _b.Literal("\"");
        int end = _b.NewState();
        int free = _b.NewState();
        Fragment freeChar = JsonLexicon.StringChar(_b, noEscapes: true);
        _b.Epsilon(free, freeChar.Start);
        _b.Epsilon(freeChar.End, free);
        _b.Edge(free, (byte)'"', (byte)'"', end);
        BuildKeyTrie(names, prefix: "", quote.End, free, end);
        return new Fragment(quote.Start, end);
    }

    private void BuildKeyTrie(List<string> names, string prefix, int node, int free, int end)
    {
        bool isName = names.Contains(prefix);
        if (!isName)
        {
            _b.Edge(node, (byte)'"', (byte)'"', end);
        }

        var excluded = new bool[128];
        var children = new SortedSet<char>();
        foreach (string name in names)
        {
            if (name.Length > prefix.Length && name.StartsWith(prefix, StringComparison.Ordinal))
            {
                children.Add(name[prefix.Length]);
            }
        }

        foreach (char c in children)
        {
            excluded[c] = true;
            int child = _b.NewState();
            _b.Edge(node, (byte)c, (byte)c, child);
            BuildKeyTrie(names, prefix + c, child, free, end);
        }

        excluded['"'] = true;
        Fragment other = JsonLexicon.StringChar(_b, excluded, noEscapes: true);
        _b.Epsilon(node, other.Start);
        _b.Epsilon(other.End, free);
    }

    private Fragment AnyValue()
    {
        if (_anyValueRule < 0)
        {
            _anyValueRule = _b.NewRule();
            _b.DefineRule(_anyValueRule, _b.Alt([
                AnyObject(),
                AnyArray(),
                JsonLexicon.String(_b, 0, -1),
                JsonLexicon.Number(_b),
                _b.Literal("true"),
                _b.Literal("false"),
                _b.Literal("null"),
            ]));
        }

        return _b.Call(_anyValueRule);
    }

    private Fragment AnyObject()
    {
        Fragment pair = _b.Seq(JsonLexicon.String(_b, 0, -1), _b.Literal(":"), OptionalSpace(), AnyValue());
        return Container("{", pair, "}");
    }

    private Fragment AnyArray() => Container("[", AnyValue(), "]");

    private Fragment Container(string open, Fragment item, string close)
    {
        Fragment o = _b.Literal(open);
        Fragment c = _b.Literal(close);
        Fragment comma = _b.Seq(_b.Literal(","), OptionalSpace());
        _b.Epsilon(o.End, c.Start);
        _b.Epsilon(o.End, item.Start);
        _b.Epsilon(item.End, comma.Start);
        _b.Epsilon(comma.End, item.Start);
        _b.Epsilon(item.End, c.Start);
        return new Fragment(o.Start, c.End);
    }
}
