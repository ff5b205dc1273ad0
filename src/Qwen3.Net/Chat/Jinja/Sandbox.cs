using System.Runtime.CompilerServices;

namespace Qwen3.Net.Chat.Jinja;

/// <summary>
/// One render's budget under <see cref="ChatTemplateLimits"/>: counts steps and active macro calls, and checks the size of
/// strings and lists before they are built, so a hostile template fails with the limit's name instead of exhausting the host.
/// </summary>
internal sealed class Sandbox(ChatTemplateLimits limits, CancellationToken cancellationToken)
{
    // Building 16 characters or items costs about as much as one interpreter step.
    private const int UnitsPerStep = 16;

    private long _steps;
    private int _calls;

    public ChatTemplateLimits Limits { get; } = limits;

    /// <summary>Counts one statement, expression or loop iteration.</summary>
    public void Step() => Charge(1);

    /// <summary>Counts the steps of work proportional to <paramref name="units"/> characters or items.</summary>
    public void ChargeFor(long units) => Charge(1 + (units / UnitsPerStep));

    /// <summary>
    /// Charges for searching <paramref name="text"/> for <paramref name="pattern"/>, whose worst case compares the pattern
    /// at every position; returns <paramref name="text"/>.
    /// </summary>
    public string ChargeSearch(string text, string pattern)
    {
        ChargeFor(Math.Max(0, text.Length - pattern.Length + 1L) * pattern.Length / UnitsPerStep);
        return text;
    }

    /// <summary>Checks and charges for a string of <paramref name="length"/> characters an operation is about to build.</summary>
    public void NeedString(long length)
    {
        CheckString(length);
        ChargeFor(length);
    }

    /// <summary>Checks, without charging, that a string being built may grow to <paramref name="length"/> characters.</summary>
    public void CheckString(long length)
    {
        if (length > Limits.MaxStringLength)
        {
            throw Exceeded(nameof(ChatTemplateLimits.MaxStringLength), Limits.MaxStringLength, $"a string of {length} characters");
        }
    }

    /// <summary>Checks and charges for a list of <paramref name="count"/> items an operation is about to build.</summary>
    public void NeedList(long count)
    {
        if (count > Limits.MaxListLength)
        {
            throw Exceeded(nameof(ChatTemplateLimits.MaxListLength), Limits.MaxListLength, $"a list of {count} items");
        }

        ChargeFor(count);
    }

    /// <summary>Checks and charges for a string an operation has built (its size bounded beforehand) or reads whole.</summary>
    public string Checked(string s)
    {
        NeedString(s.Length);
        return s;
    }

    /// <summary>Checks and charges for a list an operation has built whose size was bounded beforehand.</summary>
    public List<object?> Checked(List<object?> list)
    {
        NeedList(list.Count);
        return list;
    }

    /// <summary>Charges for hashing a dict key, which reads all of a string; returns <paramref name="key"/>.</summary>
    public object? Key(object? key)
    {
        if (key is string s)
        {
            ChargeFor(s.Length);
        }

        return key;
    }

    /// <summary>The code points of <paramref name="s"/>, checked as the list that iterating it builds.</summary>
    public string[] CodePoints(string s)
    {
        NeedList(s.Length);
        return PyText.CodePoints(s);
    }

    /// <summary>Enters a macro call; every call must be paired with <see cref="ExitCall"/>.</summary>
    public void EnterCall(string macro)
    {
        if (++_calls > Limits.MaxCallDepth)
        {
            throw Exceeded(nameof(ChatTemplateLimits.MaxCallDepth), Limits.MaxCallDepth, $"macro '{macro}' called with {Limits.MaxCallDepth} calls already active");
        }

        EnsureStack();
    }

    public void ExitCall() => _calls--;

    /// <summary>Checks the nesting level of a value being walked by printing, <c>tojson</c> or JSON conversion.</summary>
    public void EnterValue(int depth)
    {
        if (depth > Limits.MaxNestingDepth)
        {
            throw Exceeded(nameof(ChatTemplateLimits.MaxNestingDepth), Limits.MaxNestingDepth, "a value nests too deeply");
        }

        EnsureStack();
    }

    /// <summary>
    /// The last line of defence for recursion over templates and values: the limits keep each recursion shallow, but macro
    /// calls stack them, and a stack overflow cannot be caught, so fail while there is still stack to unwind.
    /// </summary>
    public static void EnsureStack()
    {
        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            throw new JinjaRuntimeException(
                $"The template or its values nest too deeply for this thread's stack; lower {nameof(ChatTemplateLimits.MaxNestingDepth)} or {nameof(ChatTemplateLimits.MaxCallDepth)}");
        }
    }

    public static JinjaRuntimeException Exceeded(string limit, long value, string what) => new(ExceededMessage(limit, value, what));

    public static string ExceededMessage(string limit, long value, string what) => $"Template limit {limit} ({value}) exceeded: {what}";

    private void Charge(long steps)
    {
        _steps += steps;
        if (_steps > Limits.MaxSteps)
        {
            throw Exceeded(nameof(ChatTemplateLimits.MaxSteps), Limits.MaxSteps, "the render takes too many steps");
        }

        cancellationToken.ThrowIfCancellationRequested();
    }
}
