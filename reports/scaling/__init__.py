"""The scaling-burden calculator (theory.md sections 3 and 4): laws, burden, efficiency
doubling, fitting."""
