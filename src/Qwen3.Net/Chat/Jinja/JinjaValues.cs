using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;

namespace Qwen3.Net.Chat.Jinja;

/// <summary>An error raised while evaluating a template; the interpreter adds the template position.</summary>
internal sealed class JinjaRuntimeException(string message, bool raisedByTemplate = false) : Exception(message)
{
    public bool RaisedByTemplate { get; } = raisedByTemplate;
}

/// <summary>Jinja's default <c>Undefined</c>: falsy, prints as empty, but fails on attribute access or arithmetic.</summary>
internal sealed class Undefined(string hint)
{
    public static readonly Undefined Anonymous = new("value");

    public string Hint { get; } = hint;

    public JinjaRuntimeException Fail() => new($"UndefinedError: {Hint} is undefined");
}

/// <summary>The object returned by <c>namespace(...)</c>; the only value templates may mutate with <c>set ns.x = ...</c>.</summary>
internal sealed class Namespace
{
    public PyDict Attributes { get; } = [];
}

/// <summary>A Python tuple: immutable, prints with parentheses, never equal to a list.</summary>
internal sealed record PyTuple(IReadOnlyList<object?> Items);

/// <summary>A callable value: globals, macros, bound methods.</summary>
internal delegate object? JinjaFunction(List<object?> args, Dictionary<string, object?> kwargs);

/// <summary>Insertion-ordered dict with Python key equality (so <c>1</c>, <c>1.0</c> and <c>True</c> are one key).</summary>
internal sealed class PyDict : OrderedDictionary<object, object?>
{
    public PyDict()
        : base(PyKeyComparer.Instance)
    {
    }

    private sealed class PyKeyComparer : IEqualityComparer<object>
    {
        public static readonly PyKeyComparer Instance = new();

        // Key lookups charge for hashing the key; comparing it on a hash match costs no more than that.
        public new bool Equals(object? x, object? y) => PyValue.Equal(x, y, null);

        public int GetHashCode(object obj) => obj switch
        {
            string s => StringComparer.Ordinal.GetHashCode(s),
            bool b => (b ? 1L : 0L).GetHashCode(),
            long l => l.GetHashCode(),
            double d when d == Math.Floor(d) && Math.Abs(d) < 9.2e18 => ((long)d).GetHashCode(),
            double d => d.GetHashCode(),
            PyTuple t => t.Items.Count,
            _ => 0,
        };
    }
}

/// <summary>Loop state exposed as <c>loop</c> inside <c>for</c> bodies.</summary>
internal sealed class LoopInfo(IReadOnlyList<object?> items)
{
    public IReadOnlyList<object?> Items { get; } = items;

    public int Index0 { get; set; }

    public object? Attribute(string name) => name switch
    {
        "index0" => (long)Index0,
        "index" => (long)Index0 + 1,
        "revindex" => (long)(Items.Count - Index0),
        "revindex0" => (long)(Items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == Items.Count - 1,
        "length" => (long)Items.Count,
        "depth" => 1L,
        "depth0" => 0L,
        "previtem" => Index0 > 0 ? Items[Index0 - 1] : new Undefined("'loop.previtem'"),
        "nextitem" => Index0 + 1 < Items.Count ? Items[Index0 + 1] : new Undefined("'loop.nextitem'"),
        "cycle" => new JinjaFunction((args, _) =>
            args.Count == 0 ? throw new JinjaRuntimeException("TypeError: no items for cycling given") : args[Index0 % args.Count]),
        _ => new Undefined($"'loop.{name}'"),
    };
}

/// <summary>Python value semantics for the Jinja value model (None, bool, int, float, str, list, tuple, dict).</summary>
internal static class PyValue
{
    public static bool IsNumber(object? v) => v is bool or long or double or BigInteger;

    public static bool IsInteger(object? v) => v is long or BigInteger;

    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        BigInteger bi => !bi.IsZero,
        string s => s.Length > 0,
        List<object?> list => list.Count > 0,
        PyTuple t => t.Items.Count > 0,
        PyDict dict => dict.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long or BigInteger => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        PyTuple => "tuple",
        PyDict => "dict",
        Namespace => "Namespace",
        LoopInfo => "LoopContext",
        JinjaFunction => "function",
        _ => v.GetType().Name,
    };

    /// <summary>Python <c>str(v)</c>, which is what <c>{{ v }}</c> and <c>~</c> print.</summary>
    public static string ToStr(object? v, Sandbox sandbox) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v, sandbox),
    };

    /// <summary>Python <c>repr(v)</c>, bounded by the sandbox's string length and nesting depth.</summary>
    public static string Repr(object? v, Sandbox sandbox)
    {
        var sb = new StringBuilder();
        WriteRepr(sb, v, sandbox, 0);
        return sandbox.Checked(sb.ToString());
    }

    /// <summary><c>repr</c> of a value that holds no other values: None, bools, numbers, strings.</summary>
    public static string ScalarRepr(object? v) => v switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        BigInteger bi => bi.ToString(CultureInfo.InvariantCulture),
        double d => PyText.FloatRepr(d),
        string s => PyText.Repr(s),
        _ => throw new ArgumentException($"{TypeName(v)} is not a scalar", nameof(v)),
    };

    private static void WriteRepr(StringBuilder sb, object? v, Sandbox sandbox, int depth)
    {
        sandbox.EnterValue(depth);
        sandbox.CheckString(sb.Length + (v is string text ? text.Length + 2L : 0));
        switch (v)
        {
            case null or bool or long or BigInteger or double or string:
                sb.Append(ScalarRepr(v));
                break;
            case Undefined:
                break;
            case List<object?> list:
                WriteSequence(sb, "[", list, "]", sandbox, depth);
                break;
            case PyTuple t:
                WriteSequence(sb, "(", t.Items, t.Items.Count == 1 ? ",)" : ")", sandbox, depth);
                break;
            case PyDict dict:
                sb.Append('{');
                var first = true;
                foreach (var (key, value) in dict)
                {
                    if (!first)
                    {
                        sb.Append(", ");
                    }

                    first = false;
                    WriteRepr(sb, key, sandbox, depth + 1);
                    sb.Append(": ");
                    WriteRepr(sb, value, sandbox, depth + 1);
                }

                sb.Append('}');
                break;
            case Namespace ns:
                sb.Append("<Namespace ");
                WriteRepr(sb, ns.Attributes, sandbox, depth + 1);
                sb.Append('>');
                break;
            case LoopInfo:
                sb.Append("<LoopContext>");
                break;
            case JinjaFunction:
                sb.Append("<function>");
                break;
            default:
                throw new JinjaRuntimeException($"TypeError: cannot print a {TypeName(v)}");
        }
    }

    private static void WriteSequence(StringBuilder sb, string open, IReadOnlyList<object?> items, string close, Sandbox sandbox, int depth)
    {
        sb.Append(open);
        for (var i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(", ");
            }

            WriteRepr(sb, items[i], sandbox, depth + 1);
        }

        sb.Append(close);
    }

    private static double ToDouble(object v) => v switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        double d => d,
        BigInteger bi => (double)bi,
        _ => throw new InvalidOperationException(),
    };

    private static BigInteger ToBig(object v) => v switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        BigInteger bi => bi,
        _ => throw new InvalidOperationException(),
    };

    public static object Normalize(BigInteger value) =>
        value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value;

    /// <summary>
    /// Integers are capped at Python's default <c>int_max_str_digits</c>, which Python applies when printing or parsing
    /// them; here it also keeps big-integer arithmetic cheap.
    /// </summary>
    public const int MaxIntegerDigits = 4300;

    private static readonly double MaxIntegerBits = Math.Ceiling(MaxIntegerDigits * Math.Log2(10));

    /// <summary>Checks that an integer of about <paramref name="bits"/> bits stays within <see cref="MaxIntegerDigits"/>.</summary>
    private static void CheckIntegerBits(double bits)
    {
        if (bits > MaxIntegerBits)
        {
            throw new JinjaRuntimeException($"ValueError: integer exceeds {MaxIntegerDigits} digits (Python's int_max_str_digits)");
        }
    }

    private static object Integer(BigInteger value)
    {
        CheckIntegerBits(value.GetBitLength());
        return Normalize(value);
    }

    // A repetition count as Python takes it: negative repeats nothing, and a huge one saturates so size checks fail.
    private static long RepeatCount(object count) => count is BigInteger big ? (big.Sign > 0 ? long.MaxValue : 0) : Math.Max(0, (long)ToBig(count));

    private static long Times(long size, long count) => size == 0 || count <= long.MaxValue / size ? size * count : long.MaxValue;

    /// <summary>Python <c>==</c>; the sandbox, when given, is charged for the characters and items compared.</summary>
    public static bool Equal(object? a, object? b, Sandbox? sandbox)
    {
        sandbox?.Step();
        if (IsNumber(a) && IsNumber(b))
        {
            return a is double || b is double ? ToDouble(a!) == ToDouble(b!) : ToBig(a!) == ToBig(b!);
        }

        switch (a)
        {
            case null: return b is null;
            case Undefined: return b is Undefined;
            case string s:
                if (b is not string t || s.Length != t.Length)
                {
                    return false;
                }

                sandbox?.ChargeFor(s.Length);
                return s == t;
            case List<object?> la: return b is List<object?> lb && SequenceEqual(la, lb, sandbox);
            case PyTuple ta: return b is PyTuple tb && SequenceEqual(ta.Items, tb.Items, sandbox);
            case PyDict da:
                if (b is not PyDict db || da.Count != db.Count)
                {
                    return false;
                }

                Sandbox.EnsureStack();
                foreach (var (key, value) in da)
                {
                    if (!db.TryGetValue(key, out var other) || !Equal(value, other, sandbox))
                    {
                        return false;
                    }
                }

                return true;
            default: return ReferenceEquals(a, b);
        }
    }

    private static bool SequenceEqual(IReadOnlyList<object?> a, IReadOnlyList<object?> b, Sandbox? sandbox)
    {
        Sandbox.EnsureStack();
        if (a.Count != b.Count)
        {
            return false;
        }

        for (var i = 0; i < a.Count; i++)
        {
            if (!Equal(a[i], b[i], sandbox))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Python ordering for <c>&lt;</c>, <c>&gt;</c> etc.; mixing unrelated types is a TypeError as in Python.</summary>
    public static int Compare(object? a, object? b, string op, Sandbox sandbox)
    {
        sandbox.Step();
        if (IsNumber(a) && IsNumber(b))
        {
            return a is double || b is double ? ToDouble(a!).CompareTo(ToDouble(b!)) : ToBig(a!).CompareTo(ToBig(b!));
        }

        if (a is string sa && b is string sb)
        {
            sandbox.ChargeFor(Math.Min(sa.Length, sb.Length));
            return PyText.CompareCodePoints(sa, sb);
        }

        IReadOnlyList<object?>? la = a is List<object?> l1 ? l1 : a is PyTuple t1 ? t1.Items : null;
        IReadOnlyList<object?>? lb = b is List<object?> l2 ? l2 : b is PyTuple t2 ? t2.Items : null;
        if (la is not null && lb is not null && a!.GetType() == b!.GetType())
        {
            Sandbox.EnsureStack();
            for (var i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (!Equal(la[i], lb[i], sandbox))
                {
                    return Compare(la[i], lb[i], op, sandbox);
                }
            }

            return la.Count.CompareTo(lb.Count);
        }

        if (a is Undefined u)
        {
            throw u.Fail();
        }

        if (b is Undefined ub)
        {
            throw ub.Fail();
        }

        throw new JinjaRuntimeException($"TypeError: '{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    public static bool Contains(object? container, object? item, Sandbox sandbox) => container switch
    {
        string s when item is string sub => sandbox.ChargeSearch(s, sub).Contains(sub, StringComparison.Ordinal),
        string => throw new JinjaRuntimeException($"TypeError: 'in <string>' requires string as left operand, not {TypeName(item)}"),
        List<object?> list => list.Any(x => Equal(x, item, sandbox)),
        PyTuple t => t.Items.Any(x => Equal(x, item, sandbox)),
        PyDict dict => sandbox.Key(item) is not null && dict.ContainsKey(item!),
        Undefined u => throw u.Fail(),
        _ => throw new JinjaRuntimeException($"TypeError: argument of type '{TypeName(container)}' is not iterable"),
    };

    /// <summary>Items produced by iterating a value in a <c>for</c> loop or a filter such as <c>join</c>.</summary>
    public static IReadOnlyList<object?> Iterate(object? v, Sandbox sandbox) => v switch
    {
        List<object?> list => list,
        PyTuple t => t.Items,
        PyDict dict => sandbox.Checked([.. dict.Keys]),
        string s => sandbox.CodePoints(s),
        Undefined => [],
        _ => throw new JinjaRuntimeException($"TypeError: '{TypeName(v)}' object is not iterable"),
    };

    private static object? Add(object? a, object? b, Sandbox sandbox)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double)
            {
                return ToDouble(a!) + ToDouble(b!);
            }

            return Integer(ToBig(a!) + ToBig(b!));
        }

        switch (a, b)
        {
            case (string x, string y):
                sandbox.NeedString((long)x.Length + y.Length);
                return x + y;
            case (List<object?> x, List<object?> y):
                sandbox.NeedList((long)x.Count + y.Count);
                return new List<object?>([.. x, .. y]);
            case (PyTuple x, PyTuple y):
                sandbox.NeedList((long)x.Items.Count + y.Items.Count);
                return new PyTuple([.. x.Items, .. y.Items]);
            default:
                throw BinaryTypeError("+", a, b);
        }
    }

    /// <summary>A binary arithmetic operator; string and list results are checked against the sandbox before they are built.</summary>
    public static object? Arithmetic(string op, object? a, object? b, Sandbox sandbox)
    {
        if (op == "+")
        {
            return Add(a, b, sandbox);
        }

        if (op == "*")
        {
            if (a is string s && IsInteger(b))
            {
                var count = RepeatCount(b!);
                sandbox.NeedString(Times(s.Length, count));
                if (s.Length == 0)
                {
                    return s;
                }

                return new StringBuilder(s.Length * (int)count).Insert(0, s, (int)count).ToString();
            }

            if (a is List<object?> list && IsInteger(b))
            {
                var count = RepeatCount(b!);
                sandbox.NeedList(Times(list.Count, count));
                if (list.Count == 0)
                {
                    return new List<object?>();
                }

                var result = new List<object?>(list.Count * (int)count);
                for (long i = 0; i < count; i++)
                {
                    result.AddRange(list);
                }

                return result;
            }
        }

        if (!IsNumber(a) || !IsNumber(b))
        {
            throw BinaryTypeError(op, a, b);
        }

        var useFloat = a is double || b is double;
        switch (op)
        {
            case "-":
                return useFloat ? ToDouble(a!) - ToDouble(b!) : Integer(ToBig(a!) - ToBig(b!));
            case "*":
                if (useFloat)
                {
                    return ToDouble(a!) * ToDouble(b!);
                }

                CheckIntegerBits(ToBig(a!).GetBitLength() + ToBig(b!).GetBitLength() - 1);
                return Integer(ToBig(a!) * ToBig(b!));
            case "/":
                {
                    var divisor = ToDouble(b!);
                    return divisor == 0 ? throw new JinjaRuntimeException("ZeroDivisionError: division by zero") : ToDouble(a!) / divisor;
                }

            case "//":
            case "%":
                if (useFloat)
                {
                    var x = ToDouble(a!);
                    var y = ToDouble(b!);
                    if (y == 0)
                    {
                        throw new JinjaRuntimeException("ZeroDivisionError: float modulo");
                    }

                    var floor = Math.Floor(x / y);
                    return op == "//" ? floor : x - (floor * y);
                }
                else
                {
                    var x = ToBig(a!);
                    var y = ToBig(b!);
                    if (y.IsZero)
                    {
                        throw new JinjaRuntimeException("ZeroDivisionError: integer division or modulo by zero");
                    }

                    // Python floors toward negative infinity; BigInteger.DivRem truncates toward zero.
                    var q = BigInteger.DivRem(x, y, out var r);
                    if (!r.IsZero && (r.Sign < 0) != (y.Sign < 0))
                    {
                        q -= 1;
                        r += y;
                    }

                    return Normalize(op == "//" ? q : r);
                }

            case "**":
                if (!useFloat && ToBig(b!).Sign >= 0)
                {
                    var x = ToBig(a!);
                    var y = ToBig(b!);
                    if (BigInteger.Abs(x) > 1)
                    {
                        CheckIntegerBits((double)(x.GetBitLength() - 1) * (double)y);
                    }
                    else if (y > int.MaxValue)
                    {
                        // 0, 1 and -1 stay small; only the parity of a huge exponent matters.
                        y = y.IsEven ? 2 : 1;
                    }

                    return Integer(BigInteger.Pow(x, (int)y));
                }

                return Math.Pow(ToDouble(a!), ToDouble(b!));
            default:
                throw new JinjaRuntimeException($"Unknown operator {op}");
        }
    }

    public static object? Negate(object? v) => v switch
    {
        bool b => b ? -1L : 0L,
        long l => Normalize(-(BigInteger)l),
        double d => -d,
        BigInteger bi => Normalize(-bi),
        Undefined u => throw u.Fail(),
        _ => throw new JinjaRuntimeException($"TypeError: bad operand type for unary -: '{TypeName(v)}'"),
    };

    private static JinjaRuntimeException BinaryTypeError(string op, object? a, object? b)
    {
        if (a is Undefined ua)
        {
            return ua.Fail();
        }

        if (b is Undefined ub)
        {
            return ub.Fail();
        }

        return new JinjaRuntimeException($"TypeError: unsupported operand type(s) for {op}: '{TypeName(a)}' and '{TypeName(b)}'");
    }

    /// <summary>Converts JSON into template values the way Python's <c>json.loads</c> would (ints stay ints, key order kept).</summary>
    /// <remarks>
    /// A <see cref="JsonElement"/> may come from a document parsed with a raised <c>MaxDepth</c>, so the nesting is checked
    /// here too.
    /// </remarks>
    public static object? FromJson(JsonElement e, Sandbox sandbox, int depth = 0)
    {
        sandbox.EnterValue(depth);
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                {
                    var dict = new PyDict();
                    foreach (var property in e.EnumerateObject())
                    {
                        dict[property.Name] = FromJson(property.Value, sandbox, depth + 1);
                    }

                    return dict;
                }

            case JsonValueKind.Array:
                return e.EnumerateArray().Select(item => FromJson(item, sandbox, depth + 1)).ToList();
            case JsonValueKind.String:
                return e.GetString();
            case JsonValueKind.Number:
                {
                    var raw = e.GetRawText();
                    if (raw.AsSpan().IndexOfAny('.', 'e', 'E') >= 0)
                    {
                        return double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
                    }

                    CheckIntegerBits((raw.TrimStart('-').Length - 1) * Math.Log2(10));
                    return long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
                        ? l
                        : BigInteger.Parse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
                }

            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            case JsonValueKind.Null:
                return null;
            default:
                return new Undefined("JSON value");
        }
    }
}

/// <summary>Python's <c>json.dumps(value, ensure_ascii=False)</c>, which transformers installs as Jinja's <c>tojson</c>.</summary>
internal static class PyJson
{
    /// <summary>Dumps <paramref name="value"/>, bounded by the sandbox's string length and nesting depth.</summary>
    /// <param name="value">The value.</param>
    /// <param name="indent">Spaces per level, or null for the one-line form; negative counts as 0, as in Python.</param>
    /// <param name="sandbox">The render's sandbox.</param>
    public static string Dumps(object? value, long? indent, Sandbox sandbox)
    {
        var sb = new StringBuilder();
        Write(sb, value, indent is { } n ? Math.Max(0, n) : null, 0, sandbox);
        sandbox.CheckString(sb.Length);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? value, long? indent, int level, Sandbox sandbox)
    {
        sandbox.EnterValue(level);
        sandbox.CheckString(sb.Length);
        switch (value)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long or BigInteger: sb.Append(PyValue.ScalarRepr(value)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : PyText.FloatRepr(d));
                break;
            case string s: WriteString(sb, s, sandbox); break;
            case List<object?> list: WriteSequence(sb, list, indent, level, sandbox); break;
            case PyTuple t: WriteSequence(sb, t.Items, indent, level, sandbox); break;
            case PyDict dict:
                if (dict.Count == 0)
                {
                    sb.Append("{}");
                    break;
                }

                sb.Append('{');
                var first = true;
                foreach (var (key, item) in dict)
                {
                    Separator(sb, ref first, indent, level + 1, sandbox);
                    WriteString(sb, key switch
                    {
                        string ks => ks,
                        bool kb => kb ? "true" : "false",
                        null => "null",
                        long or double or BigInteger => PyValue.ScalarRepr(key),
                        _ => throw new JinjaRuntimeException($"TypeError: keys must be str, int, float, bool or None, not {PyValue.TypeName(key)}"),
                    }, sandbox);
                    sb.Append(": ");
                    Write(sb, item, indent, level + 1, sandbox);
                }

                Close(sb, '}', indent, level, sandbox);
                break;
            default:
                throw new JinjaRuntimeException($"TypeError: Object of type {PyValue.TypeName(value)} is not JSON serializable");
        }
    }

    private static void WriteSequence(StringBuilder sb, IReadOnlyList<object?> items, long? indent, int level, Sandbox sandbox)
    {
        if (items.Count == 0)
        {
            sb.Append("[]");
            return;
        }

        sb.Append('[');
        var first = true;
        foreach (var item in items)
        {
            Separator(sb, ref first, indent, level + 1, sandbox);
            Write(sb, item, indent, level + 1, sandbox);
        }

        Close(sb, ']', indent, level, sandbox);
    }

    // With indent, Python uses "," item separators plus newline+indentation; without, ", ".
    private static void Separator(StringBuilder sb, ref bool first, long? indent, int level, Sandbox sandbox)
    {
        if (!first)
        {
            sb.Append(indent is null ? ", " : ",");
        }

        NewLine(sb, indent, level, sandbox);
        first = false;
    }

    private static void Close(StringBuilder sb, char closer, long? indent, int level, Sandbox sandbox)
    {
        NewLine(sb, indent, level, sandbox);
        sb.Append(closer);
    }

    private static void NewLine(StringBuilder sb, long? indent, int level, Sandbox sandbox)
    {
        if (indent is { } n)
        {
            var spaces = n <= long.MaxValue / Math.Max(1, level) ? n * level : long.MaxValue;
            sandbox.CheckString(sb.Length + 1L + spaces);
            sb.Append('\n').Append(' ', (int)spaces);
        }
    }

    private static void WriteString(StringBuilder sb, string s, Sandbox sandbox)
    {
        sandbox.CheckString(sb.Length + 2L + s.Length);
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }
}
