"""Names and plain-language descriptions of Codat's data types, as an SMB owner reads them.

Seeded into the DataType catalogue by a migration; operations staff may reword them in the admin.
"""

DATA_TYPE_TEXTS = {
    # Accounting
    "accountTransactions": (
        "Account transactions",
        "Money moving in and out of the accounts in your books, such as payments received and made.",
    ),
    "balanceSheet": (
        "Balance sheet",
        "What your business owns and owes at a point in time: assets, liabilities and equity.",
    ),
    "bankAccounts": (
        "Bank accounts (in your books)",
        "The bank accounts set up in your accounting software, with their names and balances.",
    ),
    "bankTransactions": (
        "Bank transactions (in your books)",
        "Bank account transactions recorded in your accounting software.",
    ),
    "billCreditNotes": ("Supplier credit notes", "Credit notes your suppliers have issued to you."),
    "billPayments": ("Bill payments", "Payments you have made against bills from your suppliers."),
    "bills": ("Bills", "Bills from your suppliers: who you owe, how much and when it is due."),
    "cashFlowStatement": (
        "Cash flow statement",
        "How cash came into and left your business over a period.",
    ),
    "chartOfAccounts": (
        "Chart of accounts",
        "The list of accounts your bookkeeping uses to categorise money.",
    ),
    "company": (
        "Company details",
        "Your business's name, addresses and registration details as held in your accounting software.",
    ),
    "creditNotes": ("Customer credit notes", "Credit notes you have issued to your customers."),
    "customers": (
        "Customers",
        "The customers in your accounting software, with their contact details.",
    ),
    "directCosts": (
        "Direct costs",
        "Money spent directly, without a bill, such as card purchases.",
    ),
    "directIncomes": (
        "Direct income",
        "Money received directly, without an invoice, such as cash sales.",
    ),
    "invoices": (
        "Invoices",
        "Invoices you have sent to customers: amounts, due dates and whether they are paid.",
    ),
    "itemReceipts": ("Item receipts", "Records of goods you have received from suppliers."),
    "items": (
        "Products and services",
        "The products and services you buy or sell, as listed in your accounting software.",
    ),
    "journalEntries": ("Journal entries", "Manual adjustments made in your books."),
    "journals": ("Journals", "The journals (ledgers) your accounting software records entries in."),
    "paymentMethods": (
        "Payment methods",
        "The ways your business pays and gets paid, such as card or bank transfer.",
    ),
    "payments": ("Customer payments", "Payments your customers have made against your invoices."),
    "profitAndLoss": (
        "Profit and loss",
        "Your income and expenses over a period, and the profit or loss they leave.",
    ),
    "purchaseOrders": ("Purchase orders", "Orders you have placed with your suppliers."),
    "salesOrders": ("Sales orders", "Orders your customers have placed with you."),
    "suppliers": (
        "Suppliers",
        "The suppliers in your accounting software, with their contact details.",
    ),
    "taxRates": ("Tax rates", "The tax rates (such as VAT) set up in your accounting software."),
    "trackingCategories": (
        "Tracking categories",
        "Labels you use to track income and costs, such as departments or projects.",
    ),
    "transfers": ("Transfers", "Money moved between your own accounts."),
    # Banking
    "banking-accountBalances": (
        "Bank balances",
        "The current and available balances of your bank accounts.",
    ),
    "banking-accounts": (
        "Bank accounts",
        "The accounts you hold at your bank: names, types and account numbers.",
    ),
    "banking-transactionCategories": (
        "Bank transaction categories",
        "The categories your bank uses to group transactions.",
    ),
    "banking-transactions": (
        "Bank transactions",
        "The transactions on your bank accounts: date, amount and description.",
    ),
    # Commerce
    "commerce-companyInfo": (
        "Shop details",
        "Your business's details as held by your online shop or payment platform.",
    ),
    "commerce-customers": (
        "Shop customers",
        "Customers of your online shop, with their contact details.",
    ),
    "commerce-disputes": ("Disputes", "Payments your customers have disputed or charged back."),
    "commerce-locations": ("Shop locations", "The places your business sells from."),
    "commerce-orders": ("Orders", "Orders placed in your online shop: items, amounts and dates."),
    "commerce-paymentMethods": ("Shop payment methods", "The ways customers can pay in your shop."),
    "commerce-payments": ("Shop payments", "Payments taken through your shop or payment platform."),
    "commerce-productCategories": (
        "Product categories",
        "How the products in your shop are grouped.",
    ),
    "commerce-products": (
        "Shop products",
        "The products you sell in your shop, with prices and stock.",
    ),
    "commerce-taxComponents": ("Shop tax rates", "The taxes your shop applies to sales."),
    "commerce-transactions": (
        "Shop transactions",
        "Money movements on your shop or payment account, such as payouts and fees.",
    ),
}
