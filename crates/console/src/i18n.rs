//! English and Arabic. Every text a page shows is a key of [`T`] with both languages, so a page
//! cannot show a text that has no Arabic. Arabic pages are `dir="rtl"`; the style sheet uses
//! logical properties (`margin-inline-start`, `text-align: start`) so one sheet serves both.

use axum::http::HeaderMap;

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Arabic.
    Ar,
}

impl Lang {
    /// The language tag.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ar => "ar",
        }
    }

    /// Writing direction.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::En => "ltr",
            Lang::Ar => "rtl",
        }
    }

    /// The other language (for the switch link).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Ar,
            Lang::Ar => Lang::En,
        }
    }

    /// Parses `en` or `ar`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim() {
            "en" => Some(Lang::En),
            "ar" => Some(Lang::Ar),
            _ => None,
        }
    }

    /// The page language: `?lang=` first, then the `lang` cookie, then Accept-Language, then
    /// English.
    pub fn pick(query: Option<&str>, headers: &HeaderMap) -> Lang {
        if let Some(l) = query.and_then(Lang::parse) {
            return l;
        }
        if let Some(l) = crate::auth::cookie(headers, "lang").and_then(Lang::parse) {
            return l;
        }
        let accept = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        for part in accept.split(',') {
            let tag = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if tag.starts_with("ar") {
                return Lang::Ar;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::En
    }

    /// The text of `key` in this language.
    pub fn t(self, key: T) -> &'static str {
        let (en, ar) = key.texts();
        match self {
            Lang::En => en,
            Lang::Ar => ar,
        }
    }
}

macro_rules! texts {
    ($($key:ident => $en:literal, $ar:literal;)+) => {
        /// A text shown on a page.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum T { $($key),+ }
        impl T {
            /// Every key.
            pub const ALL: &'static [T] = &[$(T::$key),+];
            /// English and Arabic.
            pub fn texts(self) -> (&'static str, &'static str) {
                match self { $(T::$key => ($en, $ar)),+ }
            }
        }
    };
}

texts! {
    Brand => "bawaba", "بوابة";
    Language => "العربية", "English";
    Console => "Console", "لوحة التحكم";
    Dashboard => "Dashboard", "لوحة المتابعة";
    Orders => "Orders", "الأوامر";
    NewOrder => "New order", "أمر جديد";
    Check => "Is it blocked?", "هل هو محجوب؟";
    Audit => "Audit log", "سجل التدقيق";
    Appeals => "Appeals", "الطعون";
    Transparency => "Transparency report", "تقرير الشفافية";
    Login => "Log in", "تسجيل الدخول";
    Logout => "Log out", "تسجيل الخروج";
    UserName => "User name", "اسم المستخدم";
    Password => "Password", "كلمة المرور";
    LoggedInAs => "Logged in as", "مسجل الدخول باسم";
    Role => "Role", "الدور";
    Authority => "Authority", "الجهة المصدرة";
    Reference => "Reference", "رقم المرجع";
    Category => "Category", "الفئة";
    Status => "Status", "الحالة";
    Issued => "Issued", "تاريخ الإصدار";
    EffectiveFrom => "Effective from", "نافذ من";
    Expires => "Expires", "ينتهي في";
    Summary => "Public summary", "الملخص العام";
    Publishable => "List in the transparency report", "يُدرج في تقرير الشفافية";
    AppealContact => "Appeal contact", "جهة الطعن";
    Rules => "Rules", "القواعد";
    Rule => "Rule", "القاعدة";
    Selector => "Selector", "المحدِّد";
    SelectorHelp => "example.test (with everything below it), exact:example.test, 198.18.7.0/24, 2001:db8:7::/48", "example.test (مع كل ما تحته)، exact:example.test، 198.18.7.0/24، 2001:db8:7::/48";
    Action => "Action", "الإجراء";
    AddRule => "Add rule", "إضافة قاعدة";
    Import => "Import a list file", "استيراد ملف قائمة";
    ImportHelp => "RPZ zone, hosts file, one domain per line, or CIDR list", "منطقة RPZ أو ملف hosts أو نطاق في كل سطر أو قائمة CIDR";
    Format => "Format", "الصيغة";
    Guess => "guess", "تخمين";
    Upload => "Upload", "رفع";
    Approve => "Approve", "اعتماد";
    Revoke => "Revoke", "إلغاء";
    Reason => "Reason", "السبب";
    FourEyes => "Four eyes: an order is approved by someone other than its proposer.", "مبدأ الأعين الأربع: يعتمد الأمرَ شخصٌ غير من اقترحه.";
    ProposedBy => "Proposed by", "اقترحه";
    ApprovedBy => "Approved by", "اعتمده";
    RevokedBy => "Revoked by", "ألغاه";
    YouProposed => "You proposed this order: another approver must approve it.", "أنت من اقترح هذا الأمر: يجب أن يعتمده معتمد آخر.";
    History => "History", "السجل";
    Create => "Create", "إنشاء";
    Save => "Save", "حفظ";
    Search => "Search", "بحث";
    Filter => "Filter", "تصفية";
    All => "all", "الكل";
    ExpiringSoon => "Expiring within 30 days", "تنتهي خلال 30 يومًا";
    NoOrders => "No orders match.", "لا توجد أوامر مطابقة.";
    Publish => "Publish bundle", "نشر الحزمة";
    Published => "Published policy version", "نُشرت نسخة السياسة";
    PolicyInForce => "Policy in force", "السياسة النافذة";
    Version => "Version", "النسخة";
    CheckHelp => "Type a name, a URL or an IP address.", "اكتب اسم نطاق أو رابطًا أو عنوان IP.";
    Blocked => "Blocked", "محجوب";
    NotBlocked => "Not blocked", "غير محجوب";
    Allowed => "Allowed (allowlist)", "مسموح (قائمة الاستثناء)";
    AtDns => "At DNS", "في نظام أسماء النطاقات";
    AtPacket => "In the packet path", "في مسار الحزم";
    Order => "Order", "الأمر";
    Entries => "entries", "مدخلات";
    Actor => "Actor", "المنفّذ";
    Object => "Object", "الكائن";
    When => "When", "الوقت";
    Verify => "Verify the chain", "التحقق من السلسلة";
    AuditIntact => "The audit log is intact: every entry links to the one before it.", "سجل التدقيق سليم: كل مدخل مرتبط بالمدخل الذي قبله.";
    AuditBroken => "The audit log has been altered:", "تم العبث بسجل التدقيق:";
    Points => "Enforcement points", "نقاط التطبيق";
    LastLoaded => "Last loaded", "آخر تحميل";
    BlockedByCategory => "Blocked per category", "المحجوب حسب الفئة";
    BlockedByOrder => "Blocked per order", "المحجوب حسب الأمر";
    LastHour => "Last hour", "الساعة الماضية";
    LastDay => "Last day", "اليوم الماضي";
    PerMinute => "Queries and flows blocked per minute", "الاستعلامات والتدفقات المحجوبة في الدقيقة";
    PerQuarterHour => "Queries and flows blocked per quarter hour", "الاستعلامات والتدفقات المحجوبة في كل ربع ساعة";
    NoData => "No data yet.", "لا توجد بيانات بعد.";
    ExpiringOrders => "Orders expiring within 30 days", "أوامر تنتهي خلال 30 يومًا";
    Restricted => "Access to this site is restricted", "الوصول إلى هذا الموقع مقيّد";
    RestrictedBody => "Access to this site has been restricted under a legal order.", "تم تقييد الوصول إلى هذا الموقع بموجب أمر قانوني.";
    Site => "Site", "الموقع";
    Until => "Until", "حتى";
    HowToAppeal => "How to appeal", "كيفية الطعن";
    AppealIntro => "If you believe this block is wrong, you can file an appeal. You will get a reference number to follow it.", "إذا كنت تعتقد أن هذا الحجب خاطئ، يمكنك تقديم طعن. ستحصل على رقم مرجعي لمتابعته.";
    FileAppeal => "File an appeal", "تقديم طعن";
    AppealReason => "Why is this block wrong?", "لماذا هذا الحجب خاطئ؟";
    Contact => "Contact (optional)", "وسيلة التواصل (اختياري)";
    Submit => "Submit", "إرسال";
    AppealFiled => "Your appeal has been filed. Keep this reference number:", "تم تقديم طعنك. احتفظ بهذا الرقم المرجعي:";
    AppealLookup => "Look up an appeal", "الاستعلام عن طعن";
    AppealNotFound => "No appeal has this reference.", "لا يوجد طعن بهذا الرقم المرجعي.";
    Answer => "Answer", "الرد";
    Open => "open", "مفتوح";
    Upheld => "upheld (the block stays)", "مؤيَّد (يبقى الحجب)";
    Granted => "granted (the block is lifted)", "مقبول (يُرفع الحجب)";
    Rejected => "rejected", "مرفوض";
    NoAppeals => "No appeals.", "لا توجد طعون.";
    Filed => "Filed", "تاريخ التقديم";
    ActiveOrders => "Orders in force", "الأوامر النافذة";
    ActiveRules => "Rules in force", "القواعد النافذة";
    ByAuthority => "Orders in force by authority", "الأوامر النافذة حسب الجهة";
    ByCategory => "Orders in force by category", "الأوامر النافذة حسب الفئة";
    PerMonth => "Orders per month", "الأوامر حسب الشهر";
    Month => "Month", "الشهر";
    Added => "Added", "أُضيفت";
    Expired => "Expired", "انتهت";
    Revoked => "Revoked", "أُلغيت";
    PublishedOrders => "Published orders", "الأوامر المنشورة";
    Downloads => "Download", "تنزيل";
    NotFound => "Page not found", "الصفحة غير موجودة";
    Error => "Something is wrong", "هناك خطأ";
    Back => "Back", "رجوع";
    Home => "Home", "الرئيسية";
    Welcome => "This gateway blocks only under lawful orders, and says so.", "لا تحجب هذه البوابة إلا بموجب أوامر قانونية، وتعلن ذلك.";
    Terrorism => "terrorism", "الإرهاب";
    ChildAbuse => "child sexual abuse material", "مواد الاعتداء الجنسي على الأطفال";
    Malware => "malware / botnet", "برمجيات خبيثة / شبكات روبوت";
    Phishing => "phishing / fraud", "تصيد احتيالي / احتيال";
    CourtOrder => "court order", "أمر قضائي";
    Other => "other", "أخرى";
    Draft => "draft", "مسودة";
    StatusApproved => "approved", "معتمد";
    Active => "active", "نافذ";
    StatusExpired => "expired", "منتهي";
    StatusRevoked => "revoked", "ملغى";
    Operator => "Operator", "المشغّل";
    Imported => "Imported", "تم الاستيراد";
    Duplicates => "duplicates", "مكررة";
    RejectedLines => "rejected lines", "أسطر مرفوضة";
    Defense => "Attack defense", "الدفاع ضد الهجمات";
    DefenseOff => "Attack defense is not running on this gateway ([flow] enabled = false).", "الدفاع ضد الهجمات غير مفعّل على هذه البوابة ([flow] enabled = false).";
    DryRunNote => "Dry run: mitigations are planned and shown, nothing is announced to the routers.", "تشغيل تجريبي: يتم تخطيط إجراءات التخفيف وعرضها، ولا يُعلن أي شيء للموجّهات.";
    Attacks => "Attacks", "الهجمات";
    Mitigations => "Mitigations in force", "إجراءات التخفيف النافذة";
    Exporters => "Flow exporters", "مصدّرو التدفقات";
    BgpSessions => "BGP sessions", "جلسات BGP";
    ManualMitigation => "Manual mitigation", "تخفيف يدوي";
    Target => "Target", "الهدف";
    Vector => "Vector", "نوع الهجوم";
    Started => "Started", "البداية";
    Ended => "Ended", "النهاية";
    Ongoing => "ongoing", "مستمر";
    PeakPps => "Peak packets/s", "ذروة الحزم/ث";
    PeakBps => "Peak bits/s", "ذروة البتات/ث";
    Prefix => "Address or prefix", "العنوان أو البادئة";
    Kind => "Kind", "النوع";
    Protocol => "Protocol (FlowSpec)", "البروتوكول (FlowSpec)";
    SourcePort => "Source port (FlowSpec)", "منفذ المصدر (FlowSpec)";
    Announce => "Announce", "إعلان";
    Withdraw => "Withdraw", "سحب";
    Routes => "Routes", "المسارات";
    Since => "Since", "منذ";
    Users => "Users", "المستخدمون";
    NewUser => "New user", "مستخدم جديد";
    OneTimePassword => "One-time password (shown once; give it to the user):", "كلمة مرور لمرة واحدة (تُعرض مرة واحدة؛ سلّمها للمستخدم):";
    Disable => "Disable", "تعطيل";
    Disabled => "disabled", "معطّل";
    Enabled => "enabled", "مفعّل";
    Tokens => "API tokens", "رموز الواجهة البرمجية";
    NewToken => "New API token", "رمز جديد";
    Label => "Label", "الوصف";
    TokenSecret => "The token (shown once; send it as Authorization: Bearer):", "الرمز (يُعرض مرة واحدة؛ أرسله في ترويسة Authorization: Bearer):";
    LastUsed => "Last used", "آخر استخدام";
    Allowlist => "Allowlist", "قائمة الاستثناء";
    AllowHelp => "Names and prefixes that must never be blocked: government services, the gateway's own infrastructure, shared front ends.", "أسماء وبادئات لا يجوز حجبها أبدًا: الخدمات الحكومية، والبنية التحتية للبوابة، والواجهات المشتركة.";
    Add => "Add", "إضافة";
    Remove => "Remove", "إزالة";
    Stale => "no report for 3 minutes", "لا تقرير منذ 3 دقائق";
    BadSite => "The site must be a name, an address or a link, such as example.iq.", "يجب أن يكون الموقع اسم نطاق أو عنوانًا أو رابطًا، مثل example.iq.";
    SiteNotBlocked => "No order in force blocks this site: there is nothing to appeal.", "لا يوجد أمر نافذ يحجب هذا الموقع: لا يوجد ما يُطعن فيه.";
    BadReason => "Please explain in 10 to 4000 characters why the block is wrong.", "يرجى شرح سبب خطأ الحجب في 10 إلى 4000 حرف.";
    BadContact => "The contact may be at most 200 characters.", "يجب ألا تتجاوز وسيلة التواصل 200 حرف.";
    BadOrder => "No order has this reference number. Leave it empty to find the order from the site.", "لا يوجد أمر بهذا الرقم المرجعي. اتركه فارغًا ليُحدَّد الأمر من الموقع.";
    TooMany => "Too many appeals from your network in the last hour. Please try again later.", "عدد كبير من الطعون من شبكتك خلال الساعة الماضية. يرجى المحاولة لاحقًا.";
    FormExpired => "The form has expired. Please reload the page and try again.", "انتهت صلاحية النموذج. يرجى إعادة تحميل الصفحة والمحاولة مجددًا.";
    ChangePassword => "Change password", "تغيير كلمة المرور";
    CurrentPassword => "Current password", "كلمة المرور الحالية";
    NewPassword => "New password (at least 12 characters)", "كلمة المرور الجديدة (12 حرفًا على الأقل)";
    RepeatPassword => "New password again", "كلمة المرور الجديدة مرة أخرى";
    PasswordsDiffer => "The two new passwords differ.", "كلمتا المرور الجديدتان مختلفتان.";
    NotRestricted => "No order in force restricts this site. If you still cannot reach it, try again in a few minutes: old DNS answers expire shortly.", "لا يوجد أمر نافذ يقيّد هذا الموقع. إذا تعذّر عليك الوصول إليه، حاول مجددًا بعد دقائق: إجابات DNS القديمة تنتهي صلاحيتها قريبًا.";
}

/// The text of a category.
pub fn category(lang: Lang, c: bawaba_policy::Category) -> &'static str {
    use bawaba_policy::Category::*;
    lang.t(match c {
        Terrorism => T::Terrorism,
        ChildAbuse => T::ChildAbuse,
        Malware => T::Malware,
        Phishing => T::Phishing,
        CourtOrder => T::CourtOrder,
        Other => T::Other,
    })
}

/// The text of a category given by name (transparency report keys), or the name itself.
pub fn category_name(lang: Lang, name: &str) -> String {
    match name.parse::<bawaba_policy::Category>() {
        Ok(c) => category(lang, c).to_string(),
        Err(_) => name.to_string(),
    }
}

/// The text of an order status.
pub fn status(lang: Lang, s: bawaba_policy::OrderStatus) -> &'static str {
    use bawaba_policy::OrderStatus::*;
    lang.t(match s {
        Draft => T::Draft,
        Approved => T::StatusApproved,
        Active => T::Active,
        Expired => T::StatusExpired,
        Revoked => T::StatusRevoked,
    })
}

/// The text of an appeal status.
pub fn appeal_status(lang: Lang, s: bawaba_store::AppealStatus) -> &'static str {
    use bawaba_store::AppealStatus::*;
    lang.t(match s {
        Open => T::Open,
        Upheld => T::Upheld,
        Granted => T::Granted,
        Rejected => T::Rejected,
    })
}

/// What a citizen reads when the public appeal form refuses its input: the field at fault and
/// what to do, in the page's language (the API's English message names the same field).
pub fn appeal_error(lang: Lang, e: &crate::ApiError) -> String {
    use crate::ApiError;
    let text = e.to_string();
    // The field leads the message ("site: ...", or the store's "invalid contact: ..."); what
    // follows may echo the citizen's own input, so only the field decides.
    let field = text.strip_prefix("invalid ").unwrap_or(&text).split(':').next().unwrap_or_default();
    let key = match (e, field) {
        (ApiError::RateLimited(_), _) => T::TooMany,
        (ApiError::Csrf, _) => T::FormExpired,
        (ApiError::Invalid(_), "site") if text.ends_with("; nothing to appeal") => T::SiteNotBlocked,
        (ApiError::Invalid(_), "site") => T::BadSite,
        (ApiError::Invalid(_), "order") => T::BadOrder,
        (ApiError::Invalid(_), "reason") => T::BadReason,
        (ApiError::Invalid(_), "contact") => T::BadContact,
        _ => return text,
    };
    lang.t(key).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appeal_errors_go_by_the_field_not_by_words_the_citizen_typed() {
        let e = |m: &str| appeal_error(Lang::En, &crate::ApiError::Invalid(m.into()));
        assert_eq!(e("site: \"contact me!\" is neither an IP address nor a valid name"), Lang::En.t(T::BadSite));
        assert_eq!(e("invalid contact: too long"), Lang::En.t(T::BadContact));
        assert_eq!(e("invalid reason: must be at least 10 characters"), Lang::En.t(T::BadReason));
        assert_eq!(e("order: no order with reference \"site\""), Lang::En.t(T::BadOrder));
        assert_eq!(
            e("site: a.example.test is not blocked by any order in force; nothing to appeal"),
            Lang::En.t(T::SiteNotBlocked)
        );
        assert_eq!(e("something else"), "something else", "anything else is shown as it is");
    }

    #[test]
    fn every_text_has_both_languages() {
        for key in T::ALL {
            let (en, ar) = key.texts();
            assert!(!en.trim().is_empty() && !ar.trim().is_empty(), "{key:?}");
            if *key != T::Brand && *key != T::Language {
                // Arabic texts hold Arabic letters (U+0600..U+06FF), not a copy of the English.
                assert!(ar.chars().any(|c| ('\u{600}'..='\u{6ff}').contains(&c)), "{key:?} has no Arabic: {ar}");
            }
        }
    }

    #[test]
    fn language_choice() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::pick(None, &h), Lang::En);
        h.insert("accept-language", "ar-IQ,ar;q=0.9,en;q=0.8".parse().unwrap());
        assert_eq!(Lang::pick(None, &h), Lang::Ar);
        assert_eq!(Lang::pick(Some("en"), &h), Lang::En);
        h.insert("cookie", "lang=en".parse().unwrap());
        assert_eq!(Lang::pick(None, &h), Lang::En);
    }
}
