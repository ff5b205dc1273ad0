using System.Text;
using Qwen3.Net.Generation.Constraints;
using static Qwen3.Net.Tests.Constraints.MaskTestVocabulary;

namespace Qwen3.Net.Tests.Constraints;

/// <summary>Masks in formats and patterns, where trie subtrees spelled with one ASCII class are decided by token length (<see cref="LazyDfa.FindClassRun"/>).</summary>
public class ClassRunMaskTests
{
    public static TheoryData<string> FormatAndPatternSchemas => new()
    {
        """{"type":"string","format":"email"}""",
        """{"type":"string","format":"date"}""",
        """{"type":"string","format":"uuid"}""",
        """{"type":"string","format":"date-time"}""",
        """{"type":"string","pattern":"^[a-z0-9_]{2,24}$"}""",
        """{"type":"string","pattern":"^[A-F0-9]{4}(-[A-F0-9]{4}){1,3}$"}""",
        """{"type":"string","pattern":"x\\w{2,5}y"}""",
        """{"type":"array","items":{"type":"string","format":"email"},"maxItems":3}""",
        """{"type":"object","properties":{"to":{"type":"string","format":"email"},"id":{"type":"string","format":"uuid"},"n":{"type":"integer","minimum":0,"maximum":99999}},"required":["to","id","n"]}""",
    };

    private static string Alphanumerics => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    [Fact]
    public void A_class_run_counts_the_class_bytes_a_bounded_repetition_still_takes()
    {
        CompiledGrammar email = Grammar("""{"type":"string","format":"email"}""");

        // The local part is [A-Za-z0-9] then up to 30 of [A-Za-z0-9_+-] and a last [A-Za-z0-9]: 31 more after the first.
        ClassRun afterFirst = email.Dfa.FindClassRun(After(email, "\"a"));
        Members(afterFirst).Should().Be(Alphanumerics, "'_', '+' and '-' cannot end the local part, so they step elsewhere");
        afterFirst.Reach.Should().Be(31);
        email.Dfa.FindClassRun(After(email, "\"abc")).Reach.Should().Be(29);
        email.Dfa.FindClassRun(After(email, "\"a" + new string('b', 31))).Reach.Should().Be(0, "the local part is full");
        email.Dfa.FindClassRun(After(email, "\"a_")).Reach.Should().Be(30);

        CompiledGrammar uuid = Grammar("""{"type":"string","format":"uuid"}""");
        ClassRun hex = uuid.Dfa.FindClassRun(After(uuid, "\"0123"));
        Members(hex).Should().Be("ABCDEFabcdef0123456789");
        hex.Reach.Should().Be(4);

        CompiledGrammar letters = Grammar("""{"type":"string","pattern":"^[a-z]+$"}""");
        letters.Dfa.FindClassRun(After(letters, "\"a")).Reach.Should().Be(ClassRun.Unbounded, "the state loops on its class");

        CompiledGrammar longRun = Grammar("""{"type":"string","pattern":"^[a-z]{0,100}$"}""");
        ClassRun bound = longRun.Dfa.FindClassRun(After(longRun, "\"a"));
        bound.Reach.Should().Be(LazyDfa.MaxRunSteps, "counting stops after MaxRunSteps");
        bound.AtLeast.Should().BeTrue();
        bound.Decides(LazyDfa.MaxRunSteps + 1).Should().BeFalse("longer tokens of the class must still be walked");
    }

    /// <summary>Every mask along random walks through formats and patterns, each walk on a freshly compiled grammar so no mask comes from the cache, equals the token-by-token reference bit for bit.</summary>
    [Theory]
    [MemberData(nameof(FormatAndPatternSchemas))]
    public void Masks_equal_the_masks_of_stepping_every_token_through_the_automaton(string schema)
    {
        int masksCompared = CompareWithReference(() => Grammar(schema), masks: 60, walks: 40, steps: 40, freshGrammars: true);
        masksCompared.Should().BeGreaterThanOrEqualTo(60);
    }

    private static string Members(ClassRun run)
    {
        var members = new StringBuilder();
        foreach (char c in Alphanumerics + "_+-.@\"")
        {
            if (run.Contains((byte)c))
            {
                members.Append(c);
            }
        }

        return members.ToString();
    }
}
