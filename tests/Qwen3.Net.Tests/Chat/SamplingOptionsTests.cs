using Qwen3.Net.Chat;

namespace Qwen3.Net.Tests.Chat;

public class SamplingOptionsTests
{
    [Fact]
    public void Model_card_defaults_differ_by_thinking_mode()
    {
        var thinking = SamplingOptions.For(thinking: true);
        thinking.Should().BeSameAs(SamplingOptions.ForThinking);
        (thinking.Temperature, thinking.TopP, thinking.TopK, thinking.MinP).Should().Be((0.6f, 0.95f, 20, 0f));

        var direct = SamplingOptions.For(thinking: false);
        (direct.Temperature, direct.TopP, direct.TopK, direct.MinP).Should().Be((0.7f, 0.8f, 20, 0f));
        direct.RepetitionPenalty.Should().Be(1f);
        direct.PresencePenalty.Should().Be(0f);
    }

    public static TheoryData<string, Func<SamplingOptions>> InvalidValues => new()
    {
        { nameof(SamplingOptions.Temperature), () => new SamplingOptions { Temperature = -0.1f } },
        { nameof(SamplingOptions.Temperature), () => new SamplingOptions { Temperature = float.NaN } },
        { nameof(SamplingOptions.Temperature), () => new SamplingOptions { Temperature = float.PositiveInfinity } },
        { nameof(SamplingOptions.TopK), () => new SamplingOptions { TopK = -1 } },
        { nameof(SamplingOptions.TopP), () => new SamplingOptions { TopP = 0f } },
        { nameof(SamplingOptions.TopP), () => new SamplingOptions { TopP = 1.01f } },
        { nameof(SamplingOptions.TopP), () => new SamplingOptions { TopP = float.NaN } },
        { nameof(SamplingOptions.MinP), () => new SamplingOptions { MinP = -0.01f } },
        { nameof(SamplingOptions.MinP), () => new SamplingOptions { MinP = 1.5f } },
        { nameof(SamplingOptions.PresencePenalty), () => new SamplingOptions { PresencePenalty = 2.5f } },
        { nameof(SamplingOptions.RepetitionPenalty), () => new SamplingOptions { RepetitionPenalty = 0f } },
        { nameof(SamplingOptions.RepetitionPenalty), () => new SamplingOptions { RepetitionPenalty = float.NaN } },
        { nameof(SamplingOptions.MaxNewTokens), () => new SamplingOptions { MaxNewTokens = 0 } },
        { nameof(SamplingOptions.StopStrings), () => new SamplingOptions { StopStrings = ["ok", ""] } },
        { nameof(SamplingOptions.TopP), () => SamplingOptions.ForThinking with { TopP = 2f } },
    };

    [Theory]
    [MemberData(nameof(InvalidValues))]
    public void Invalid_values_throw_naming_the_parameter(string parameter, Func<SamplingOptions> create)
    {
        create.Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be(parameter);
    }

    [Fact]
    public void Boundary_values_are_accepted()
    {
        var options = new SamplingOptions { Temperature = 0f, TopP = 1f, MinP = 1f, TopK = 0, PresencePenalty = -2f, MaxNewTokens = 1 };
        options.Temperature.Should().Be(0f);
        options.MinP.Should().Be(1f);
    }

    [Fact]
    public void Stop_strings_are_copied_so_the_caller_cannot_change_them_later()
    {
        var mine = new List<string> { "END" };
        var options = new SamplingOptions { StopStrings = mine };
        mine.Add("MORE");
        options.StopStrings.Should().Equal("END");
    }

    [Fact]
    public void Equal_options_compare_equal_including_stop_strings()
    {
        var a = SamplingOptions.ForThinking with { StopStrings = ["x"], Seed = 3 };
        var b = SamplingOptions.ForThinking with { StopStrings = new List<string> { "x" }, Seed = 3 };
        a.Should().Be(b);
        (a with { StopStrings = ["y"] }).Should().NotBe(b);
    }

    [Fact]
    public void Stop_strings_are_bounded_in_count_and_length()
    {
        FluentActions.Invoking(() => new SamplingOptions { StopStrings = Enumerable.Repeat("x", SamplingOptions.MaxStopStrings + 1).ToArray() })
            .Should().Throw<ArgumentOutOfRangeException>().WithParameterName("StopStrings");
        FluentActions.Invoking(() => new SamplingOptions { StopStrings = [new string('x', SamplingOptions.MaxStopStringLength + 1)] })
            .Should().Throw<ArgumentOutOfRangeException>().WithParameterName("StopStrings");
        new SamplingOptions { StopStrings = Enumerable.Repeat(new string('x', SamplingOptions.MaxStopStringLength), SamplingOptions.MaxStopStrings).ToArray() }
            .StopStrings.Should().HaveCount(SamplingOptions.MaxStopStrings);
    }
}
