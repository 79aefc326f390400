using System.Reflection;

namespace Envio.Contracts.DataObjects;

/// <summary>
/// Typed delegates over properties, made once at start-up from reflection: reading or setting a property later is
/// one delegate call, with no reflection and no boxing (see ../shared/DATA-OBJECTS.md).
/// </summary>
public static class Accessors
{
    /// <summary>A getter <c>Func&lt;TOwner, TValue&gt;</c> for <paramref name="property"/> (its exact type).</summary>
    public static Func<TOwner, TValue> Getter<TOwner, TValue>(PropertyInfo property) =>
        property.GetMethod!.CreateDelegate<Func<TOwner, TValue>>();

    /// <summary>A setter for a property with a setter or an <c>init</c> accessor (the API fills in ids on objects it just read).</summary>
    public static Action<TOwner, TValue> Setter<TOwner, TValue>(PropertyInfo property) =>
        (property.SetMethod ?? throw new InvalidOperationException($"{property.DeclaringType?.Name}.{property.Name} has no setter or init accessor."))
            .CreateDelegate<Action<TOwner, TValue>>();

    /// <summary>
    /// Calls <paramref name="generic"/> (a generic method definition of <paramref name="on"/>'s type, or static when
    /// <paramref name="on"/> is null) with the given type arguments: how start-up code turns a <see cref="Type"/> into
    /// a typed delegate.
    /// </summary>
    public static TResult Invoke<TResult>(Type declaring, string method, Type[] typeArguments, object? on, params object?[] arguments) =>
        (TResult)declaring.GetMethod(method, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance)!
            .MakeGenericMethod(typeArguments).Invoke(on, arguments)!;
}
