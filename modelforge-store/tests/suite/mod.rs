//! The behaviour every store must have, written once. `behaviour_tests!(factory)` turns each
//! function into a `#[test]` against the stores `factory` makes.

pub mod api_keys;
pub mod auth;
pub mod bad_input;
pub mod concurrency;
pub mod data;
pub mod memory_controls;
pub mod registration;
pub mod session_settings;

/// Declares one `#[test]` per behaviour, each running it on a store from `$factory`.
macro_rules! behaviour_tests {
    ($factory:path) => {
        $crate::suite::behaviour_tests!(@each $factory;
            auth::the_first_user_is_admin_and_later_ones_cannot_claim_admin,
            auth::usernames_are_unique_regardless_of_case,
            auth::bad_usernames_passwords_and_emails_are_invalid_input,
            auth::wrong_password_and_unknown_user_give_the_same_error,
            auth::unknown_users_take_about_as_long_as_wrong_passwords,
            auth::login_records_the_time_and_never_returns_the_hash,
            auth::five_failures_lock_the_account_with_growing_waits,
            auth::issued_tokens_verify_to_the_same_actor,
            auth::tampered_tokens_are_rejected,
            auth::expired_tokens_are_rejected,
            auth::unsigned_and_other_algorithm_tokens_are_rejected,
            auth::tokens_from_another_secret_issuer_or_audience_are_rejected,
            auth::a_valid_token_for_a_user_of_another_store_is_rejected,
            auth::refresh_tokens_rotate_and_reuse_revokes_the_family,
            auth::logout_revokes_the_refresh_token,
            auth::expired_refresh_tokens_are_refused,
            auth::changing_the_password_revokes_every_token,
            auth::disabled_users_cannot_log_in_refresh_or_use_tokens,
            auth::only_admins_administer_and_the_last_admin_stays,
            auth::admins_revoke_other_users_tokens,
            data::sessions_and_messages_survive_a_restart,
            data::messages_keep_insertion_order_with_strictly_increasing_times,
            data::messages_with_equal_timestamps_come_back_in_id_order,
            data::sessions_list_pinned_then_newest_with_counts_previews_and_pages,
            data::untitled_sessions_are_named_by_their_first_user_message,
            data::sessions_are_found_by_title_and_content,
            data::message_pages_and_token_counts,
            data::messages_after_one_are_deleted_for_regeneration,
            data::a_message_and_those_after_it_are_deleted_for_an_edit,
            data::deleting_a_session_deletes_its_messages_and_unlinks_memories,
            data::memories_keep_kind_confidence_and_embedding,
            data::exports_import_back_with_new_ids,
            bad_input::over_long_values_are_rejected_and_nothing_is_stored,
            bad_input::sql_metacharacters_are_stored_verbatim_in_every_text_field,
            bad_input::nul_characters_are_refused_everywhere,
            bad_input::bad_imports_change_nothing,
            bad_input::another_users_session_behaves_like_a_missing_one,
            bad_input::memories_are_scoped_to_their_owner,
            bad_input::exports_hold_only_the_actors_data,
            bad_input::deleting_an_account_removes_all_its_data,
            memory_controls::temporary_sessions_are_marked_at_creation_and_can_be_switched,
            memory_controls::exports_and_imports_keep_temporary_sessions,
            memory_controls::memory_is_on_by_default_and_switched_by_the_user_or_an_admin,
            memory_controls::a_summary_is_replaced_and_goes_with_its_messages_and_session,
            memory_controls::a_summary_through_a_message_of_another_session_is_not_found,
            memory_controls::another_users_session_is_not_found_for_temporary_and_summary_calls,
            memory_controls::deleting_an_account_removes_its_summaries,
            session_settings::sessions_choose_a_model_at_creation_and_by_update,
            session_settings::one_update_changes_several_settings_at_once,
            session_settings::a_refused_session_update_changes_nothing,
            session_settings::another_users_session_is_not_found_for_updates,
            session_settings::sessions_are_listed_by_pinned_state,
            session_settings::exports_and_imports_keep_the_model,
            api_keys::api_keys_verify_to_their_owner_with_the_current_role,
            api_keys::a_keys_last_use_is_recorded_at_most_once_a_minute,
            api_keys::unknown_revoked_and_malformed_keys_are_invalid_tokens,
            api_keys::revoking_every_token_ends_api_keys_but_a_new_password_does_not,
            api_keys::disabled_users_keys_stop_verifying_until_enabled,
            api_keys::another_users_key_is_not_found_like_a_missing_one,
            api_keys::api_key_names_are_checked,
            api_keys::deleting_an_account_deletes_its_keys,
            registration::registration_is_open_until_an_admin_closes_it,
            registration::a_disabled_or_demoted_admin_cannot_switch_registration,
            concurrency::sixteen_threads_append_500_messages_each,
            concurrency::concurrent_first_registrations_make_one_admin,
            concurrency::concurrent_refreshes_of_one_token_succeed_at_most_once,
        );
    };
    (@each $factory:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::suite::$module::$name($factory)
            }
        )*
    };
}
pub(crate) use behaviour_tests;
